"""Plots of what a study predicts per evaluation domain (re-exported by
:mod:`optuna_adso.visualization`).

- :func:`plot_domain_predictions`: the recommended mixture's predicted loss on every domain at
  the target, beside uniform's and a reference mixture's, with intervals.
- :func:`plot_tradeoff_front`: the predicted trade-off between two objectives at the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import optuna
import plotly.graph_objects as go

from optuna_adso.objectives import DomainLoss, MixtureObjective, reference_weights
from optuna_adso.pareto import pareto_front
from optuna_adso.prediction import predict_domains
from optuna_adso.recommendation import recommend
from optuna_adso.study_model import SettingsSource, StudyModel

Z90 = 1.6449  # half-width of a 90% interval, in standard deviations
NO_DOMAINS = "no run reported per-domain values (optuna_adso.report(..., domains=...))"


def _message(title: str, text: str) -> go.Figure:
    """A figure that says why there is nothing to draw (as the other plots do)."""
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def plot_domain_predictions(
    study: optuna.Study,
    *,
    objective: MixtureObjective | str | None = None,
    reference: str | Mapping[str, float] | None = None,
    sampler: SettingsSource | None = None,
) -> go.Figure:
    """Predicted per-domain losses at the target (bars with 90% intervals) of the mixture
    recommended for ``objective`` (the study's own by default), of uniform, and of ``reference``."""
    model = StudyModel.of(study, sampler)
    title = "Predicted per-domain loss at the target (90% intervals)"
    if not model.reported_domains():
        return _message(title, NO_DOMAINS)
    rec = recommend(study, sampler=sampler, objective=objective)
    mixtures = {f"recommended ({rec.objective})": rec.mixture, "uniform": "uniform"}
    if reference is not None:
        mixtures["reference"] = reference
    rows = [
        dict(zip(model.spec.domains, map(float, reference_weights(m, model.spec.domains, "reference"))))
        if isinstance(m, str) else dict(m)
        for m in mixtures.values()
    ]
    preds = predict_domains(study, rows, sampler=sampler)
    names = list(preds[0])
    fig = go.Figure()
    for label, pred in zip(mixtures, preds):
        fig.add_trace(go.Bar(
            x=names, y=[pred[d][0] for d in names], name=label,
            error_y={"type": "data", "array": [Z90 * pred[d][1] for d in names]},
        ))
    fig.update_layout(title=title, barmode="group",
                      xaxis_title="evaluation domain", yaxis_title="predicted loss")
    return fig


def plot_tradeoff_front(
    study: optuna.Study,
    objectives: Sequence[MixtureObjective | str] | None = None,
    *,
    sampler: SettingsSource | None = None,
) -> go.Figure:
    """The mixtures predicted Pareto-optimal at the target for two objectives (the first two
    reported domains' losses by default), with 90% intervals, and where uniform lies."""
    if objectives is None:
        names = StudyModel.of(study, sampler).reported_domains()
        if len(names) < 2:
            return _message("Predicted trade-off at the target", NO_DOMAINS + " for at least two domains")
        objectives = [DomainLoss(names[0]), DomainLoss(names[1])]
    if len(objectives) != 2:
        raise ValueError(f"plot_tradeoff_front draws two objectives, got {len(objectives)}")
    front = pareto_front(study, objectives, sampler=sampler)
    means = np.array([p.means for p in front])
    stds = np.array([p.stds for p in front])
    labels = [repr(o) if isinstance(o, MixtureObjective) else str(o) for o in objectives]
    hover = ["<br>".join(f"{d}={w:.3f}" for d, w in p.mixture.items()) for p in front]
    fig = go.Figure(go.Scatter(
        x=means[:, 0], y=means[:, 1], mode="lines+markers", name="predicted front", hovertext=hover,
        error_x={"type": "data", "array": Z90 * stds[:, 0]}, error_y={"type": "data", "array": Z90 * stds[:, 1]},
    ))
    fig.update_layout(title="Predicted trade-off at the target (90% intervals)", xaxis_title=labels[0],
                      yaxis_title=labels[1])
    return fig
