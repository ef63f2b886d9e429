"""optuna-dashboard integration: publish our plots and the current recommendation into a study.

optuna-dashboard shows any study's trials, parameters (the real mixture weights, ``mix/<domain>``)
and learning curves by itself.  What it cannot know is what the study *learned about the target*:
:func:`publish` stores our figures (:mod:`optuna_adso.visualization`) with
``optuna_dashboard.save_plotly_graph_object`` and a Markdown note with the recommendation
(``save_note``), so they appear on the study's page.  :class:`DashboardCallback` does it every
few trials while a study runs.  :func:`serve` starts the dashboard (``adso dashboard``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_adso import visualization as viz
from optuna_adso.recommendation import Recommendation, recommend
from optuna_adso import records
from optuna_adso.study_model import SettingsSource
from optuna_adso.validation import as_int

__all__ = ["PLOTS", "DashboardCallback", "publish", "recommendation_note", "serve"]

_logger = logging.getLogger(__name__)

PLOTS: dict[str, Callable[..., go.Figure]] = {
    "mixtures": viz.plot_mixtures,
    "fidelity-cost": viz.plot_fidelity_cost,
    "recommendation-history": viz.plot_recommendation_history,
    "optimum-shift": viz.plot_optimum_shift,
    "domain-losses": viz.plot_domain_losses,
    "domain-predictions": viz.plot_domain_predictions,
    "tradeoff-front": viz.plot_tradeoff_front,
    "scale-fan": viz.plot_scale_fan,
}
"""The figures :func:`publish` stores, by graph id (``adso-<name>`` on the dashboard page)."""


def recommendation_note(rec: Recommendation) -> str:
    """The study note: the recommended mixture as a Markdown table, with its prediction."""
    target = ", ".join(f"{k}={v:g}" for k, v in rec.target.items())
    rows = "\n".join(f"| {d} | {w:.4f} |" for d, w in sorted(rec.mixture.items(), key=lambda x: -x[1]))
    notes = "".join(f"\n- {n}" for n in rec.notes)
    return (
        f"## ADSO recommendation (after {rec.n_trials} trials)\n\n"
        f"Predicted value at the target ({target}): **{rec.mean:.4f} +- {rec.std:.4f}**; "
        f"cost spent {rec.flops_spent:.3g}.\n\n| domain | weight |\n|---|---|\n{rows}\n{notes}\n\n"
        "Export it with `adso export --format megatron` (or nemo, olmo-core, nanotron, litgpt, "
        "regmix, json, yaml).\n"
    )


def _check_plots(plots: Sequence[str] | None) -> list[str]:
    names = list(PLOTS) if plots is None else list(plots)
    unknown = sorted(set(names) - set(PLOTS))
    if unknown:
        raise ValueError(f"plots must be among {sorted(PLOTS)}, got unknown {unknown}")
    return names


def publish(
    study: optuna.Study, *, sampler: SettingsSource | None = None, plots: Sequence[str] | None = None
) -> Recommendation | None:
    """Store our plots and the recommendation note in ``study``; return the recommendation.

    A plot that fails (say, no model yet this early) is logged and skipped: publishing must never
    break the study it describes.
    """
    names = _check_plots(plots)
    from optuna_dashboard import save_note, save_plotly_graph_object

    for name in names:
        try:
            fig = PLOTS[name](study, sampler=sampler)
        except Exception as exc:  # noqa: BLE001 - a figure is optional, the study is not
            _logger.warning("adso dashboard: skipped plot %s (%s)", name, exc)
            continue
        save_plotly_graph_object(study, fig, graph_object_id=f"adso-{name}")
    try:
        rec = recommend(study, sampler=sampler)
    except ValueError as exc:
        _logger.warning("adso dashboard: no recommendation yet (%s)", exc)
        return None
    save_note(study, recommendation_note(rec))
    return rec


class DashboardCallback:
    """Study callback: :func:`publish` every ``every`` finished trials (and never more often).

    Publishing recomputes the recommendation a few times (a second or so on 2 cores for a
    100-trial study), so keep ``every`` at a handful of trials or more.
    """

    def __init__(self, every: int = 10, *, sampler: SettingsSource | None = None,
                 plots: Sequence[str] | None = None) -> None:
        self.every = as_int(every, "every", 1)
        self.sampler = sampler
        self.plots = _check_plots(plots)
        self._published_at = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = records.all_trials(study)  # the whole study, even under a pruner's view
        n_finished = sum(1 for t in trials if t.state.is_finished())
        if n_finished - self._published_at >= self.every:
            self._published_at = n_finished
            publish(study, sampler=self.sampler, plots=self.plots)


def serve(storage: str | optuna.storages.BaseStorage, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Start optuna-dashboard on ``storage`` and block (``adso dashboard --storage URL``)."""
    from optuna_dashboard import run_server

    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int in 1..65535, got {port!r}")
    print(f"optuna-dashboard on http://{host}:{port}/ (storage {storage if isinstance(storage, str) else type(storage).__name__}); Ctrl-C stops it")
    run_server(storage, host=host, port=port)
