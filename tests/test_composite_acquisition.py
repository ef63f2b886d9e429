"""The acquisition of a non-linear per-domain objective (the worst domain's excess over a
reference): scored on joint per-domain draws, and the reference measured at the anchor first."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.acquisition import Fidelity, expected_improvement
from optuna_adso.composite_acquisition import CompositeAcquisition
from optuna_adso.domain_model import DomainModel
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.surrogate import MultiFidelitySurrogate, inputs_at

DOMAINS = ["a", "b", "c"]
EVAL = ["p", "q", "r"]
UNIFORM = np.full(3, 1.0 / 3.0)
# each evaluation set learns most from "its" domain, and "r" from "a" as well: moving weight
# from "c" to "a" and "b" beats uniform on every set, moving it anywhere else loses one
TRANSFER = np.array([[1.0, 0.1, 0.0], [0.1, 1.0, 0.0], [1.2, 0.3, 1.0]])


def losses_at(w: np.ndarray) -> np.ndarray:
    return 3.0 - np.log(np.asarray(w) @ TRANSFER.T + 0.05)


@pytest.fixture(scope="module")
def posterior() -> tuple[MultiFidelitySurrogate, ObjectivePosterior, np.ndarray]:
    rng = np.random.default_rng(3)
    w = np.vstack([UNIFORM, rng.dirichlet(np.ones(3), 40)])
    x = inputs_at(w, (0.0, 0.0))
    y = losses_at(w)
    gp = MultiFidelitySurrogate().fit(x, y.sum(axis=1), n_weights=3)
    model = DomainModel.fit(gp, x, y, EVAL)
    return gp, ObjectivePosterior(model, adso.WorstExcessLoss("uniform"), DOMAINS), w


def test_composite_ei_is_zero_at_the_reference_and_points_where_every_domain_improves(posterior):
    gp, post, tried = posterior
    target = Fidelity(1.0, 1.0, (0.0, 0.0), 1.0)
    acq = CompositeAcquisition(gp, post, [target], tried)
    assert acq.target_best <= 1e-12  # the reference scores exactly 0: improving means beating it
    cands = np.vstack([UNIFORM, np.random.default_rng(0).dirichlet(np.ones(3), 4000)])
    ei, mean, var = acq.target_ei(cands)
    assert ei[0] < 1e-9 and abs(mean[0]) < 1e-6 and var[0] < 1e-10
    best = cands[int(np.argmax(acq.goal_value(cands)))]
    assert np.all(losses_at(best) < losses_at(UNIFORM)), best  # better than uniform on every set
    # the composite EI is not the EI of a Gaussian with the same moments: it sees the max's skew
    assert not np.allclose(ei, expected_improvement(mean, var, acq.target_best), rtol=0.05)


def test_composite_acquisition_prices_fidelities_with_the_composite_ei(posterior):
    gp, post, tried = posterior
    fids = [Fidelity(0.1, 1.0, (-1.0, 0.0), 0.1), Fidelity(1.0, 1.0, (0.0, 0.0), 1.0)]
    acq = CompositeAcquisition(gp, post, fids, tried)
    cands = np.random.default_rng(1).dirichlet(np.ones(3), 2000)
    w = cands[int(np.argmax(acq.target_ei(cands)[0]))]
    ei = float(acq.target_ei(w[None])[0][0])
    scores = acq.score_fidelities(w)
    assert ei > 0 and np.all(np.isfinite(scores)) and np.all(scores >= 0)
    assert scores[1] <= ei * (1 + 1e-9)  # a target run removes at most all the target's variance


def objective(trial: optuna.Trial) -> float:
    w = adso.suggest_mixture(trial, "mix", DOMAINS)
    n = adso.suggest_scale(trial, "n", [1e7, 1e8])
    weights = np.array([w[d] for d in DOMAINS])
    for step in (500, 1000):
        losses = losses_at(weights) + (n / 1e8) ** -0.2 + (step / 1000) ** -0.3
        adso.report(trial, float(losses.mean()), step, domains=dict(zip(EVAL, losses)))
    return float(losses.mean())


def run(seed: int, n_trials: int, reference: str | dict[str, float] = "uniform") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = adso.ADSOSampler({"n": 1e8, "step": 1000}, seed=seed, objective=adso.WorstExcessLoss(reference))
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def _runs_of(study: optuna.Study, weights: np.ndarray, scale: float) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.params["n"] == scale
            and np.allclose([t.params[f"mix/{d}"] for d in DOMAINS], weights, atol=1e-6)]


def test_a_worst_excess_study_runs_the_reference_at_the_target_once_then_scores_per_domain():
    reference = {"a": 0.6, "b": 0.3, "c": 0.1}
    study = run(seed=2, n_trials=9, reference=reference)
    proposals = [records.read_proposal(t) for t in study.trials]
    bases = [p.get("basis") for p in proposals if p]
    assert bases.count("reference") == 1
    ref = next(t for t, p in zip(study.trials, proposals) if p.get("basis") == "reference")
    assert ref.params["n"] == 1e8
    assert _runs_of(study, np.array([0.6, 0.3, 0.1]), 1e8) == [ref]
    assert "per-domain" in bases
    rec = adso.recommend(study)
    assert rec.objective == "worst-excess(custom)"
    # seeded: the same study again proposes the same mixtures at the same scales
    again = run(seed=2, n_trials=9, reference=reference)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_a_uniform_reference_is_measured_by_the_startup_run_at_the_target():
    """The anchor's first startup run is the uniform mixture: it measures the uniform reference,
    and no second run of it is proposed."""
    study = run(seed=2, n_trials=9)
    bases = [p.get("basis") for p in (records.read_proposal(t) for t in study.trials) if p]
    assert bases.count("reference") == 0
    (ref,) = _runs_of(study, np.full(3, 1 / 3), 1e8)
    assert records.read_proposal(ref)["basis"] == "startup"
    assert "per-domain" in bases
    assert adso.recommend(study).objective == "worst-excess(uniform)"
