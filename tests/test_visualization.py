"""Every plot on a small real study of the synthetic objective; one PNG written through kaleido."""

from __future__ import annotations

import math

import numpy as np
import optuna
import plotly.graph_objects as go
import pytest

import optuna_adso as adso
from optuna_adso import visualization as viz
from optuna_adso.recommendation import flops_spent
from conftest import DOMAINS, SCALES, TARGET_SCALE, make_objective, make_sampler

N_TRIALS = 14


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    """14 ADSO trials; complete trials also record per-domain losses as the pretrain objective does."""
    base = make_objective()

    def objective(trial: optuna.Trial) -> float:
        value = base(trial)
        trial.set_user_attr("val_losses", {d: value + 0.1 * i for i, d in enumerate(DOMAINS)})
        return value

    s = optuna.create_study(sampler=make_sampler(0), pruner=adso.ADSOPruner(), direction="minimize")
    s.optimize(objective, n_trials=N_TRIALS)
    return s


def test_ternary_places_each_trial_at_its_mixture(study: optuna.Study) -> None:
    fig = viz.plot_mixtures(study)
    (trace,) = fig.data
    assert isinstance(trace, go.Scatterternary)
    assert len(trace.a) == N_TRIALS
    first = study.trials[0].user_attrs["mix"]
    assert (trace.a[0], trace.b[0], trace.c[0]) == pytest.approx([first[d] for d in DOMAINS])
    finished_values = [v for v in trace.marker.color if not math.isnan(v)]
    assert len(finished_values) == N_TRIALS  # coloured by value, pruned trials by their last report
    assert max(trace.marker.size) > min(trace.marker.size)  # sized by scale


def test_bars_and_parcoords_show_the_same_weights(study: optuna.Study) -> None:
    bars = viz.plot_mixtures(study, kind="bars")
    stacked = np.array([t.y for t in bars.data if isinstance(t, go.Bar)])
    assert stacked.shape == (3, N_TRIALS)
    assert stacked.sum(axis=0) == pytest.approx(np.ones(N_TRIALS))
    par = viz.plot_mixtures(study, kind="parcoords")
    labels = [d.label for d in par.data[0].dimensions]
    assert labels == [*DOMAINS, "log10 scale", "steps", "value"]


def test_more_than_three_domains_gives_parallel_coordinates_under_any_sampler() -> None:
    domains = ["a", "b", "c", "d", "e"]

    def objective(trial: optuna.Trial) -> float:
        w = adso.suggest_mixture(trial, "mix", domains)
        return float(sum((w[d] - 0.2) ** 2 for d in domains))

    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    s.optimize(objective, n_trials=6)
    fig = viz.plot_mixtures(s)
    assert isinstance(fig.data[0], go.Parcoords)
    assert [d.label for d in fig.data[0].dimensions][:5] == domains
    with pytest.raises(ValueError, match="kind='ternary' needs exactly 3 domains"):
        viz.plot_mixtures(s, kind="ternary")


def test_fidelity_cost_ends_at_the_cost_spent(study: optuna.Study) -> None:
    fig = viz.plot_fidelity_cost(study)
    scales, cumulative = fig.data
    assert set(scales.y) <= set(SCALES)
    assert cumulative.y[-1] == pytest.approx(flops_spent(study, study.sampler))
    assert np.all(np.diff(cumulative.y) >= 0)


def test_recommendation_history_ends_at_the_current_recommendation(study: optuna.Study) -> None:
    fig = viz.plot_recommendation_history(study, n_points=3)
    band, line = fig.data
    rec = adso.recommend(study)
    assert line.y[-1] == pytest.approx(rec.mean)
    assert line.x[-1] == pytest.approx(rec.flops_spent)
    assert len(line.x) >= 2 and np.all(np.diff(line.x) >= 0)
    assert len(band.y) == 2 * len(line.y)  # the upper edge, then the lower edge back


def test_optimum_shift_finds_that_the_best_mixture_moves_with_scale(study: optuna.Study) -> None:
    fig = viz.plot_optimum_shift(study)
    assert [t.name for t in fig.data] == list(DOMAINS)
    assert list(fig.data[0].x) == [*SCALES[:-1], TARGET_SCALE]
    weights = np.array([t.y for t in fig.data])  # (domain, scale)
    assert weights.sum(axis=0) == pytest.approx(np.ones(weights.shape[1]))
    # the synthetic world: books lead at the smallest scale, web at the target
    assert DOMAINS[int(np.argmax(weights[:, 0]))] == "books"
    assert DOMAINS[int(np.argmax(weights[:, -1]))] == "web"


def test_domain_losses_of_top_trials_and_graceful_absence(study: optuna.Study) -> None:
    fig = viz.plot_domain_losses(study, top=2)
    assert 1 <= len(fig.data) <= 2
    assert list(fig.data[0].x) == sorted(DOMAINS)
    empty = viz.plot_domain_losses(study, prefix="missing/", nested="missing")
    assert len(empty.data) == 0
    assert "no trial recorded per-domain losses" in empty.layout.annotations[0].text


def test_png_export(study: optuna.Study, tmp_path) -> None:
    if viz.find_browser() is None:
        pytest.skip("no Chrome/Chromium for kaleido (scripts/ensure_browser.sh installs Debian's chromium)")
    path = viz.write_image(viz.plot_optimum_shift(study), tmp_path / "shift.png", width=600, height=400)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_dashboard_callback_publishes_every_n_trials() -> None:
    from optuna_dashboard import get_note

    from optuna_adso.dashboard import DashboardCallback, publish

    s = optuna.create_study(sampler=make_sampler(1), pruner=adso.ADSOPruner())
    s.optimize(make_objective(), n_trials=5, callbacks=[DashboardCallback(every=2, plots=["mixtures"])])
    assert "after 4 trials" in get_note(s)  # published after trials 2 and 4, not 5
    attrs = s._storage.get_study_system_attrs(s._study_id)
    assert any("adso-mixtures" in k for k in attrs)
    assert not any("adso-optimum-shift" in k for k in attrs)
    with pytest.raises(ValueError, match="plots must be among"):
        publish(s, plots=["nope"])
    with pytest.raises(ValueError, match="plots must be among"):
        DashboardCallback(plots=["nope"])  # refused before the study runs
