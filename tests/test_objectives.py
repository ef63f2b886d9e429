"""Per-domain objectives: reports, the objects on arrays, the joint per-domain model, the sampler
optimizing one, and recommend/predict re-targeting a finished study with no new runs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.domain_model import DomainModel
from optuna_adso.objectives import objective_from_config, parse_objective
from optuna_adso.study_model import StudySettings
from optuna_adso.surrogate import MultiFidelitySurrogate

DOMAINS = ["a", "b", "c"]
EVAL = ["a", "b", "c", "web"]
# Which mixture domains each evaluation set learns from: "c" learns from "a" as much as from
# itself, so a mixture heavy in "a" can beat uniform on every set (a negative worst excess).
TRANSFER = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.0], [1.0, 0.0, 1.0], [0.5, 0.3, 0.2]])
GAIN = np.array([3.0, 2.0, 2.5, 2.0])
FLOOR = np.array([2.0, 2.2, 1.8, 2.5])
SCALES = [1e7, 3e7, 1e8]
TARGET = {"step": 1000, "n": 1e8}
UNIFORM = np.full(3, 1.0 / 3.0)


def domain_losses(w, n: float, step: float) -> np.ndarray:
    eff = np.asarray(w, dtype=float) @ TRANSFER.T + 0.02
    return FLOOR + (n / 1e8) ** -0.3 + GAIN * (step * eff / 100.0) ** -0.4


def at_target(w) -> np.ndarray:
    return domain_losses(w, TARGET["n"], TARGET["step"])


def objective(trial: optuna.Trial) -> float:
    w = adso.suggest_mixture(trial, "mix", DOMAINS)
    n = adso.suggest_scale(trial, "n", SCALES)
    for step in (250, 500, 1000):
        losses = domain_losses([w[d] for d in DOMAINS], n, step)
        adso.report(trial, float(losses.mean()), step, domains=dict(zip(EVAL, losses)))
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(losses.mean())


def run_study(n_trials: int, objective_spec=None, seed: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=adso.ADSOSampler(TARGET, seed=seed, objective=objective_spec))
    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.fixture(scope="module")
def mean_study() -> optuna.Study:
    """A study of the mean loss whose runs report every domain's loss."""
    return run_study(18)


def weights_of(rec) -> np.ndarray:
    return np.array([rec.mixture[d] for d in DOMAINS])


# --- the objects on arrays -----------------------------------------------------------------


def test_objectives_on_arrays():
    losses = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    assert np.allclose(adso.MeanLoss().evaluate(losses, None, EVAL), [2.5, 2.0])
    assert np.allclose(adso.DomainLoss("b").evaluate(losses, None, EVAL), [2.0, 2.0])
    weighted = adso.WeightedLoss({"a": 3, "web": 1})  # normalized to 0.75 / 0.25
    assert np.allclose(weighted.evaluate(losses, None, EVAL), [1.75, 2.0])
    ref = np.array([1.5, 1.0, 3.5, 4.0])
    worst = adso.WorstExcessLoss("uniform")
    assert np.allclose(worst.evaluate(losses, ref, EVAL), [1.0, 1.0])
    assert np.allclose(worst.evaluate(ref[None], ref, EVAL), [0.0])  # the reference scores 0
    only_ac = adso.WorstExcessLoss("uniform", domains=["a", "c"])
    assert np.allclose(only_ac.evaluate(losses, ref, EVAL), [-0.5, 0.5])
    assert adso.MeanLoss().linear_weights(EVAL) is not None and worst.linear_weights(EVAL) is None


@pytest.mark.parametrize(
    "obj",
    [adso.MeanLoss(), adso.DomainLoss("a"), adso.WeightedLoss({"a": 1, "b": 2}), adso.WorstExcessLoss("uniform"),
     adso.WorstExcessLoss({"a": 0.5, "b": 0.5, "c": 0.0}, domains=["a", "web"])],
)
def test_objectives_round_trip_through_storage_config(obj):
    assert objective_from_config(obj.to_config()) == obj


def test_objectives_from_their_command_line_spelling():
    assert parse_objective("mean") == adso.MeanLoss()
    assert parse_objective("domain:web") == adso.DomainLoss("web")
    assert parse_objective("worst-excess") == adso.WorstExcessLoss("uniform")
    assert parse_objective("weighted:a=1,b=3") == adso.WeightedLoss({"a": 0.25, "b": 0.75})
    assert parse_objective("value") is None
    with pytest.raises(ValueError, match="unknown objective 'best'"):
        parse_objective("best")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: adso.WeightedLoss({"a": -1.0}), "weight of 'a' must be finite and >= 0"),
        (lambda: adso.WeightedLoss({}), "non-empty"),
        (lambda: adso.DomainLoss(""), "needs a domain name"),
        (lambda: adso.WorstExcessLoss("best"), "reference must be 'uniform' or a mixture"),
        (lambda: adso.DomainConstraint("a"), "exactly one of at_most= or not_worse_than="),
        (lambda: adso.DomainConstraint("a", at_most=1.0, not_worse_than="uniform"), "exactly one"),
        (lambda: adso.DomainConstraint("a", at_most="low"), "at_most must be a number"),
    ],
)
def test_bad_objects_are_refused_on_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_reference_must_be_a_mixture_of_the_study_domains():
    with pytest.raises(ValueError, match=r"missing \['b', 'c'\], unknown \['z'\]"):
        adso.WorstExcessLoss({"a": 0.5, "z": 0.5}).validate(EVAL, DOMAINS)
    with pytest.raises(ValueError, match="sum to 1"):
        adso.WorstExcessLoss({"a": 0.5, "b": 0.2, "c": 0.1}).validate(EVAL, DOMAINS)
    with pytest.raises(ValueError, match=r"unknown domains \['zzz'\]"):
        adso.DomainLoss("zzz").validate(EVAL, DOMAINS)


# --- reports -------------------------------------------------------------------------------


def test_report_stores_domains_and_drops_nan_ones_with_a_warning():
    study = optuna.create_study()
    trial = study.ask()
    adso.report(trial, 2.0, 10, domains={"a": 1.0, "b": 3.0})
    with pytest.warns(UserWarning, match=r"non-finite per-domain values for \['b'\]"):
        adso.report(trial, 2.5, 20, domains={"a": 1.5, "b": float("nan")})
    frozen = study.trials[0]
    assert frozen.intermediate_values == {10: 2.0, 20: 2.5}
    assert records.domain_values(frozen) == {10: {"a": 1.0, "b": 3.0}, 20: {"a": 1.5}}


@pytest.mark.parametrize(
    "domains, match", [([1.0, 2.0], "domains must be a dict"), ({"a": "low"}, r"domains\['a'\] must be a number")]
)
def test_report_refuses_bad_domains_before_reporting(domains, match):
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(ValueError, match=match):
        adso.report(trial, 1.0, 5, domains=domains)
    assert study.trials[0].intermediate_values == {}


# --- the joint per-domain model on arrays --------------------------------------------------


def test_domain_model_learns_domain_correlation_and_shares_one_kernel():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), 40)
    z = rng.uniform(-1, 0, (40, 2))
    x = np.column_stack([w, z])
    f = np.sin(3 * w[:, 0]) + w[:, 1] ** 2 + 0.3 * z[:, 0]
    losses = np.column_stack([f, 2.0 * f + 1.0, -f + 0.1 * w[:, 2]])
    gp = MultiFidelitySurrogate().fit(x, losses.mean(axis=1), n_weights=3)
    model = DomainModel.fit(gp, x, losses, ["p", "q", "r"])
    corr = model.correlation()
    assert corr[0, 1] > 0.99 and corr[0, 2] < -0.9
    mean, cov = model.predict(x[:5])
    assert np.allclose(mean, losses[:5], atol=0.05)
    assert cov.shape == (5, 3, 3) and np.all(np.linalg.eigvalsh(cov) > -1e-12)


# --- studies: optimizing an objective, and re-targeting one ----------------------------------


def test_sampler_objective_is_stored_and_rebuilt_from_the_study(mean_study):
    study = run_study(4, "domain:web")
    config = records.read_config(records.study_attrs(study))
    assert StudySettings.from_config(config).objective == adso.DomainLoss("web")
    assert adso.recommend(study).objective == "domain(web)"


def test_retargeting_needs_no_new_runs_and_answers_each_objective(mean_study):
    n_before = len(mean_study.trials)
    mean_rec = adso.recommend(mean_study)
    a_rec = adso.recommend(mean_study, objective=adso.DomainLoss("a"))
    assert len(mean_study.trials) == n_before
    assert a_rec.objective == "domain(a)" and mean_rec.objective == "value"
    # Domain "a" alone wants more "a" than the mean does, and the answer is good at the target.
    assert a_rec.mixture["a"] >= mean_rec.mixture["a"] - 1e-9
    best_a = min(at_target(w)[0] for w in np.random.default_rng(0).dirichlet(np.ones(3), 5000))
    gap = at_target(UNIFORM)[0] - best_a
    assert at_target(weights_of(a_rec))[0] - best_a < 0.1 * gap
    assert set(a_rec.domains) == set(EVAL)
    assert abs(a_rec.domains["a"][0] - at_target(weights_of(a_rec))[0]) < 4 * a_rec.domains["a"][1] + 1e-3


def test_worst_excess_from_a_mean_study_beats_uniform_on_every_domain(mean_study):
    rec = adso.recommend(mean_study, objective=adso.WorstExcessLoss("uniform"))
    excess = at_target(weights_of(rec)) - at_target(UNIFORM)
    assert excess.max() < 0.0, excess
    assert abs(rec.mean - excess.max()) < 4 * rec.std + 1e-3


def test_a_reference_never_run_at_the_top_scale_is_named_in_the_notes(mean_study):
    rec = adso.recommend(mean_study, objective=adso.WorstExcessLoss("uniform"))
    ran_there = any(
        t.params.get("n") == TARGET["n"] and np.allclose([t.params[f"mix/{d}"] for d in DOMAINS], UNIFORM, atol=1e-6)
        for t in mean_study.trials if t.params
    )
    assert any("no run at the top runnable scale" in n for n in rec.notes) == (not ran_there)
    assert not any("no run at the top runnable scale" in n for n in adso.recommend(mean_study).notes)


def test_predict_worst_excess_is_exactly_zero_at_the_reference(mean_study):
    p = adso.predict(mean_study, dict(zip(DOMAINS, UNIFORM)), objective="worst-excess")[0]
    assert abs(p.mean) < 1e-6 and p.std < 1e-6 and p.noise_std >= 0.0


def test_a_study_optimizing_worst_excess_finds_a_mixture_better_on_every_domain():
    study = run_study(14, adso.WorstExcessLoss("uniform"), seed=1)
    rec = adso.recommend(study)
    assert rec.objective == "worst-excess(uniform)"
    assert (at_target(weights_of(rec)) - at_target(UNIFORM)).max() < 0.0
    keys = {k for t in study.trials for k in t.system_attrs}
    assert any(k.startswith("adso:gp_state@weighted(") for k in keys)  # the reference's GP is stored too


def test_constraints_are_met_or_flagged_infeasible(mean_study):
    keep_c = adso.DomainConstraint("c", not_worse_than="uniform")
    rec = adso.recommend(mean_study, objective="domain:a", constraints=[keep_c])
    assert rec.feasible_probability is not None and rec.feasible_probability >= 0.9
    assert at_target(weights_of(rec))[2] <= at_target(UNIFORM)[2] + 1e-3
    impossible = adso.recommend(mean_study, constraints=[adso.DomainConstraint("a", at_most=0.0)])
    assert impossible.feasible_probability < 0.9
    assert any(n.startswith("INFEASIBLE") for n in impossible.notes)


def test_bad_objective_inputs_fail_before_any_compute(mean_study):
    with pytest.raises(ValueError, match=r"unknown domains \['zzz'\]"):
        adso.recommend(mean_study, objective=adso.DomainLoss("zzz"))
    with pytest.raises(ValueError, match=r"DomainConstraint\('zzz'\) names unknown domains"):
        adso.recommend(mean_study, constraints=[adso.DomainConstraint("zzz", at_most=3.0)])
    with pytest.raises(ValueError, match="must be a mixture of the study's domains"):
        adso.recommend(mean_study, objective=adso.WorstExcessLoss({"a": 1.0}))


def test_objectives_need_per_domain_reports():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=adso.ADSOSampler(TARGET, seed=0))

    def plain(trial: optuna.Trial) -> float:
        w = adso.suggest_mixture(trial, "mix", DOMAINS)
        n = adso.suggest_scale(trial, "n", SCALES)
        value = float(domain_losses([w[d] for d in DOMAINS], n, 1000).mean())
        trial.report(value, 1000)
        return value

    study.optimize(plain, n_trials=4)
    with pytest.raises(ValueError, match="report no per-domain values"):
        adso.recommend(study, objective="mean")


def test_nan_domain_reports_never_corrupt_the_model():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=adso.ADSOSampler(TARGET, seed=3, objective="domain:a"))

    def sometimes_nan(trial: optuna.Trial) -> float:
        w = adso.suggest_mixture(trial, "mix", DOMAINS)
        n = adso.suggest_scale(trial, "n", SCALES)
        losses = domain_losses([w[d] for d in DOMAINS], n, 1000)
        per_domain = dict(zip(EVAL, losses))
        if trial.number % 3 == 1:
            per_domain["a"] = math.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adso.report(trial, float(losses.mean()), 1000, domains=per_domain)
        return float(losses.mean())

    study.optimize(sometimes_nan, n_trials=10)
    rec = adso.recommend(study)
    assert math.isfinite(rec.mean) and math.isfinite(rec.std)


def test_command_line_recommends_for_another_objective(tmp_path, capsys):
    import json

    from optuna_adso.cli import main

    url = f"sqlite:///{tmp_path / 'obj.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="mix", storage=url, sampler=adso.ADSOSampler(TARGET, seed=0))
    study.optimize(objective, n_trials=8)
    assert main(["recommend", "--storage", url, "--study-name", "mix", "--objective", "worst-excess", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "worst-excess(uniform)" and set(out["domains"]) == set(EVAL)
    assert main(["recommend", "--storage", url, "--study-name", "mix", "--objective", "domain:zzz"]) == 1
    assert "unknown domains ['zzz']" in capsys.readouterr().err


def test_non_dominated_on_arrays():
    from optuna_adso.pareto import non_dominated

    values = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [1.0, 6.0]])
    assert non_dominated(values).tolist() == [0, 1, 3]


def test_pareto_front_of_two_domains_from_a_mean_study(mean_study):
    front = adso.pareto_front(mean_study, [adso.DomainLoss("a"), adso.DomainLoss("b")])
    assert len(front) >= 3
    means = np.array([p.means for p in front])
    assert np.all(np.diff(means[:, 0]) >= 0) and np.all(np.diff(means[:, 1]) <= 0)  # a trade-off
    truth = np.array([at_target(np.array([p.mixture[d] for d in DOMAINS]))[:2] for p in front])
    # The front's ends are what each domain alone wants, measured at the target.
    best_a = min(at_target(w)[0] for w in np.random.default_rng(0).dirichlet(np.ones(3), 5000))
    assert truth[0, 0] - best_a < 0.1 * (at_target(UNIFORM)[0] - best_a)
    assert truth[:, 1].min() < at_target(UNIFORM)[1] - 0.1  # and it reaches far along the other
    with pytest.raises(ValueError, match="at least two"):
        adso.pareto_front(mean_study, ["mean"])


def test_multi_objective_studies_get_a_clear_error_before_any_trial_runs():
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=adso.ADSOSampler(TARGET, seed=0))
    with pytest.raises(ValueError, match="one per-domain objective for each.*pareto_front"):
        study.ask()


def test_domain_plots_and_dashboard_publish_them(mean_study):
    from optuna_adso import dashboard, visualization

    bars = visualization.plot_domain_predictions(mean_study, objective="worst-excess", reference={"a": 0.5, "b": 0.5, "c": 0.0})
    assert [t.name for t in bars.data] == ["recommended (worst-excess(uniform))", "uniform", "reference"]
    assert list(bars.data[0].x) == EVAL and all(e > 0 for e in bars.data[1].error_y.array)
    front = visualization.plot_tradeoff_front(mean_study)
    assert len(front.data[0].x) >= 3
    preds = adso.predict_domains(mean_study, dict(zip(DOMAINS, UNIFORM)))[0]
    assert abs(preds["a"][0] - at_target(UNIFORM)[0]) < 4 * preds["a"][1] + 1e-3
    dashboard.publish(mean_study, plots=["domain-predictions", "tradeoff-front"])
    attrs = mean_study._storage.get_study_system_attrs(mean_study._study_id)
    for name in ("adso-domain-predictions", "adso-tradeoff-front"):
        assert any(name in k for k in attrs), name


def test_shared_kernel_refit_explains_every_domain_better_and_falls_back_safely():
    import torch

    from optuna_adso.domain_model import _neg_profiled_log_likelihood, fit_shared_kernel

    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(3), 30)
    z = rng.uniform(-1, 0, (30, 2))
    x = np.column_stack([w, z])
    losses = np.column_stack([np.sin(6 * w[:, 0]), np.cos(5 * w[:, 1]), w[:, 2] ** 2]) + 0.2 * z[:, :1]
    gp = MultiFidelitySurrogate().fit(x, losses.mean(axis=1), n_weights=3)
    tx, ty = torch.as_tensor(x), torch.as_tensor((losses - losses.mean(0)) / losses.std(0))
    h = torch.as_tensor(np.column_stack([np.ones(30), z]))
    noise = float(gp.model.likelihood.noise)
    kern, new_noise = fit_shared_kernel(gp.model.covar_module, noise, tx, ty, h)
    with torch.no_grad():
        before = float(_neg_profiled_log_likelihood(gp.model.covar_module, torch.tensor(noise), tx, ty, h))
        after = float(_neg_profiled_log_likelihood(kern, torch.tensor(new_noise), tx, ty, h))
    assert after < before and kern is not gp.model.covar_module
    same, same_noise = fit_shared_kernel(gp.model.covar_module, noise, tx[:5], ty[:5], h[:5])
    assert same is gp.model.covar_module and same_noise == noise  # too few rows: no refit


def test_long_objective_keys_are_shortened_for_storage_attribute_names():
    many = adso.WeightedLoss({f"evaluation_domain_number_{i}": 1.0 for i in range(40)})
    assert len(many.key) > 64 and len(many.storage_key) == 64
    other = adso.WeightedLoss({f"evaluation_domain_number_{i}": 1.0 + (i == 39) for i in range(40)})
    assert other.storage_key != many.storage_key  # the digest tells them apart
    assert adso.MeanLoss().storage_key == "mean"


SERVERS = {
    "postgresql": ("psycopg2", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"]),
    "mariadb": ("pymysql", ["mysql://root:@127.0.0.1:3306/test"]),
}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_objective_studies_live_in_a_server_and_another_process_answers_from_it(kind):
    """Per-step domain attributes, the stored objective and its GP states (``@`` in attribute
    names) go through PostgreSQL and MariaDB; a second handle with no sampler recommends the same."""
    import uuid

    from optuna_adso.storage import open_storage

    driver, urls = SERVERS[kind]
    pytest.importorskip(driver)
    storage = None
    for url in urls:
        try:
            storage = open_storage(url)
            break
        except ConnectionError:
            continue
    if storage is None:
        pytest.skip(f"{kind} server not reachable; run scripts/ensure_services.sh")
    name = f"objectives-{uuid.uuid4().hex[:8]}"
    try:
        study = optuna.create_study(study_name=name, storage=storage,
                                    sampler=adso.ADSOSampler(TARGET, seed=0, objective="worst-excess"))
        study.optimize(objective, n_trials=7)
        other = optuna.load_study(study_name=name, storage=storage)  # no sampler: read from storage
        rec = adso.recommend(other)
        assert rec.objective == "worst-excess(uniform)" and set(rec.domains) == set(EVAL)
        assert rec.mixture == adso.recommend(study).mixture
        keys = {k for t in other.trials for k in t.system_attrs if k.startswith("adso:gp_state")}
        assert any("@worst-excess" in k for k in keys)
        assert all(records.domain_values(t) for t in other.trials)
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        storage.engine.dispose()
