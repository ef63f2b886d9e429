"""The fan chart: predicted value against model scale for the best mixtures, up to the target
(re-exported by :mod:`optuna_adso.visualization`).

Where the runs stop and the target lies beyond them, the fan shows what the recommendation rests
on: the trend the model extrapolates, and how wide its honest interval is by the time it reaches
the target (widened as ``predict`` does, by the model's own held-out errors).
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import plotly.graph_objects as go

from optuna_adso.extrapolation import std_inflation
from optuna_adso.study_model import SettingsSource, StudyModel, incumbent_weights
from optuna_adso.surrogate import SurrogateFitError, single_threaded

Z90 = 1.6449  # half-width of a 90% interval, in standard deviations


def plot_scale_fan(
    study: optuna.Study, *, top: int = 3, n_scales: int = 24, sampler: SettingsSource | None = None
) -> go.Figure:
    """Predicted value at the target step against model scale (log), from the smallest proxy to
    the target, for the ``top`` mixtures predicted best at the target, with 90% intervals."""
    model = StudyModel.of(study, sampler)
    target = model.target
    title = "Predicted value by model scale, with 90% intervals"
    if target.scale_param is None or target.scale is None:
        raise ValueError("plot_scale_fan needs a study whose target has a scale (suggest_scale)")
    with single_threaded():
        try:
            fitted = model.fit_surrogate(np.random.default_rng(0), now=len(model.trials), maxiter=0)
            best = incumbent_weights(fitted.surrogate, fitted.observations.weights, n=top)
        except SurrogateFitError as exc:
            raise ValueError(f"the study has no model to plot yet ({exc})") from None
        if not model.target_runnable:  # the GP that states values beyond the runs, as predict()'s
            fitted, _ = model.stated_or_search(fitted, now=len(model.trials))
        inside, beyond = std_inflation(model, fitted)  # widened as predict() widens
    largest = max(model.scale_choices)
    scales = np.geomspace(min(model.scale_choices), max(target.scale, largest), n_scales)
    z = fitted.axes.z(np.log10(scales), np.full(n_scales, math.log10(target.step)))
    inflation = np.where(scales > largest * (1 + 1e-9), beyond, inside)
    sign = -1.0 if model.maximize else 1.0
    fig = go.Figure()
    for i, w in enumerate(best):
        mean, var = fitted.surrogate.predict(np.column_stack([np.tile(w, (n_scales, 1)), z]))
        mean, half = sign * mean, Z90 * np.sqrt(var) * inflation
        label = ", ".join(f"{d}={x:.2f}" for d, x in zip(model.spec.domains, w))
        fig.add_trace(go.Scatter(
            x=np.concatenate([scales, scales[::-1]]), y=np.concatenate([mean + half, (mean - half)[::-1]]),
            fill="toself", opacity=0.2, line={"width": 0}, showlegend=False, hoverinfo="skip",
            legendgroup=str(i),
        ))
        fig.add_trace(go.Scatter(x=scales, y=mean, mode="lines", name=f"#{i + 1}: {label}", legendgroup=str(i)))
    fig.add_vline(x=max(model.scale_choices), line_dash="dot", annotation_text="largest run")
    fig.add_vline(x=target.scale, line_dash="dash", annotation_text="target")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="model scale",
                      yaxis_title=f"predicted value at step {target.step:g}")
    return fig
