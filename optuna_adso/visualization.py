"""Plots of a mixture study, as plotly figures (the shape of ``optuna.visualization``).

Every ``plot_*(study, ...)`` returns a :class:`plotly.graph_objects.Figure`; it works on a study
loaded from any storage and reads only what the study stores (declarations, reports, the
sampler's config), so it can run in another process than the workers.  :func:`write_image`
writes a PNG for a report through kaleido and a system Chromium, without matplotlib.

- :func:`plot_mixtures`: the mixtures tried (ternary for 3 domains, parallel coordinates or
  stacked bars beyond), coloured by value, sized by scale.
- :func:`plot_fidelity_cost`: the scale and steps of each run, and the cost spent so far.
- :func:`plot_recommendation_history`: predicted target value of the recommendation vs cost.
- :func:`plot_optimum_shift`: the mixture predicted best at each scale.
- :func:`plot_domain_losses`: per-domain validation losses of the top trials.
- :func:`plot_domain_predictions`, :func:`plot_tradeoff_front`: what the study predicts per
  evaluation domain at the target (see :mod:`optuna_adso.domain_plots`).
- :func:`plot_scale_fan`: predicted value against scale up to the target, with intervals
  (see :mod:`optuna_adso.scale_plots`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from plotly.subplots import make_subplots

from optuna_adso import records
from optuna_adso.acquisition import minimize_target_mean
from optuna_adso.cost import FlopsCost
from optuna_adso.recommendation import recommend
from optuna_adso.space import trial_scale, trial_weights
from optuna_adso.study_model import (
    NoStudyConfig,
    SettingsSource,
    StudyModel,
    StudySettings,
    StudyView,
    read_study,
    settings_for_study,
)
from optuna_adso.surrogate import SurrogateFitError, single_threaded
from optuna_adso.validation import as_int

__all__ = [
    "plot_domain_losses",
    "plot_domain_predictions",
    "plot_fidelity_cost",
    "plot_mixtures",
    "plot_optimum_shift",
    "plot_recommendation_history",
    "plot_scale_fan",
    "plot_tradeoff_front",
    "write_image",
]

DOMAIN_LOSS_PREFIX = "val_loss/"
DOMAIN_LOSS_ATTR = "val_losses"  # {domain: loss}, written by optuna_adso.pretrain's callback
_COLORSCALE = "Viridis"


@dataclass
class _Run:
    """One trial as the plots see it."""

    number: int
    weights: np.ndarray
    scale: float
    last_step: int | None
    value: float | None  # final value if complete, else the last report
    state: TrialState
    cost: float


def _data(study: optuna.Study) -> StudyView:
    data = read_study(study)
    if data is None:
        raise ValueError(
            f"study {study.study_name!r} declares no mixture yet: run a trial that calls suggest_mixture"
        )
    return data


def _last_value(t: FrozenTrial) -> float | None:
    if t.state == TrialState.COMPLETE and t.value is not None:
        return float(t.value)
    if t.last_step is not None:
        v = t.intermediate_values.get(t.last_step)
        return None if v is None or not math.isfinite(v) else float(v)
    return None


def _runs(data: StudyView, settings: StudySettings | None) -> list[_Run]:
    """The trials that ran a mixture; cost is NaN when the study has no ADSO settings."""
    out = []
    model = None if settings is None else StudyModel(settings, data.spec, data.scale, data.trials, data.maximize)
    default_scale = settings.target.run_scale if settings is not None else 1.0
    for t in sorted(data.trials, key=lambda t: t.number):
        w = trial_weights(t, data.spec)
        scale = trial_scale(t, data.scale, default_scale)
        if w is None or scale is None:
            continue
        cost = model.trial_cost(t)[1] if model is not None else math.nan
        out.append(_Run(t.number, w, scale, t.last_step, _last_value(t), t.state, cost))
    return out


def _optional_settings(study: optuna.Study, sampler: SettingsSource | None) -> StudySettings | None:
    """The study's ADSO settings when it has them (a study run by another sampler has none)."""
    try:
        return settings_for_study(study, sampler)
    except NoStudyConfig:
        return None


def _cost_label(settings: StudySettings) -> str:
    return "FLOPs" if isinstance(settings.cost, FlopsCost) else "cost units"


def _hover(run: _Run, domains: Sequence[str]) -> str:
    mix = "<br>".join(f"{d}: {w:.3f}" for d, w in zip(domains, run.weights))
    value = "n/a" if run.value is None else f"{run.value:.4f}"
    return (
        f"trial {run.number} ({run.state.name.lower()})<br>scale {run.scale:.3g}, "
        f"step {run.last_step}<br>value {value}<br>{mix}"
    )


def _sizes(runs: Sequence[_Run]) -> list[float]:
    """Marker size grows with log scale: the bigger the model, the bigger the dot."""
    logs = np.log10([r.scale for r in runs])
    span = max(float(logs.max() - logs.min()), 1e-9) if len(logs) else 1.0
    return [8.0 + 14.0 * float(x - logs.min()) / span for x in logs]


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


# --- the mixtures tried ----------------------------------------------------------------------


def plot_mixtures(study: optuna.Study, *, kind: str = "auto", sampler: SettingsSource | None = None) -> go.Figure:
    """The mixtures tried, coloured by value (comparable within one scale), sized by scale.

    ``kind``: ``"ternary"`` (3 domains only), ``"parcoords"`` (one axis per weight, then scale,
    step and value), ``"bars"`` (stacked weights per trial under the values), or ``"auto"``
    (ternary for 3 domains, parallel coordinates beyond).
    """
    if kind not in ("auto", "ternary", "parcoords", "bars"):
        raise ValueError(f"kind must be 'auto', 'ternary', 'parcoords' or 'bars', got {kind!r}")
    data = _data(study)
    domains = list(data.spec.domains)
    if kind == "ternary" and len(domains) != 3:
        raise ValueError(f"kind='ternary' needs exactly 3 domains, the study has {len(domains)}")
    if kind == "auto":
        kind = "ternary" if len(domains) == 3 else "parcoords"
    runs = _runs(data, _optional_settings(study, sampler))
    title = f"Mixtures tried ({len(runs)} trials)"
    if not runs:
        return _empty(title, "no trial has run a mixture yet")
    values = [math.nan if r.value is None else r.value for r in runs]
    if kind == "ternary":
        fig = go.Figure(
            go.Scatterternary(
                a=[r.weights[0] for r in runs],
                b=[r.weights[1] for r in runs],
                c=[r.weights[2] for r in runs],
                mode="markers",
                text=[_hover(r, domains) for r in runs],
                hoverinfo="text",
                marker={
                    "color": values,
                    "colorscale": _COLORSCALE,
                    "size": _sizes(runs),
                    "symbol": ["circle" if r.state == TrialState.COMPLETE else "diamond" for r in runs],
                    "colorbar": {"title": "value"},
                    "line": {"width": 0.5, "color": "black"},
                },
                name="trials",
            )
        )
        fig.update_layout(
            ternary={"aaxis_title": domains[0], "baxis_title": domains[1], "caxis_title": domains[2]},
            title=title + ": size = model scale, diamond = stopped early",
        )
        return fig
    if kind == "parcoords":
        dims = [{"label": d, "values": [r.weights[i] for r in runs], "range": [0, 1]} for i, d in enumerate(domains)]
        dims.append({"label": "log10 scale", "values": [math.log10(r.scale) for r in runs]})
        dims.append({"label": "steps", "values": [r.last_step or 0 for r in runs]})
        dims.append({"label": "value", "values": values})
        fig = go.Figure(
            go.Parcoords(
                line={"color": values, "colorscale": _COLORSCALE, "showscale": True, "colorbar": {"title": "value"}},
                dimensions=dims,
            )
        )
        fig.update_layout(title=title)
        return fig
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.05)
    fig.add_trace(
        go.Scatter(
            x=[r.number for r in runs],
            y=values,
            mode="markers",
            text=[_hover(r, domains) for r in runs],
            hoverinfo="text",
            marker={"color": [math.log10(r.scale) for r in runs], "colorscale": _COLORSCALE,
                    "colorbar": {"title": "log10 scale", "len": 0.35, "y": 0.85}},
            name="value",
        ),
        row=1,
        col=1,
    )
    for i, d in enumerate(domains):
        fig.add_trace(go.Bar(x=[r.number for r in runs], y=[r.weights[i] for r in runs], name=d), row=2, col=1)
    fig.update_layout(barmode="stack", title=title)
    fig.update_yaxes(title_text="value", row=1, col=1)
    fig.update_yaxes(title_text="weight", range=[0, 1], row=2, col=1)
    fig.update_xaxes(title_text="trial", row=2, col=1)
    return fig


# --- fidelity and cost -----------------------------------------------------------------------


def plot_fidelity_cost(study: optuna.Study, *, sampler: SettingsSource | None = None) -> go.Figure:
    """Which scale each trial ran and for how many steps (top); cost spent so far (bottom).

    Cost is the study's declared cost model (FLOPs for :class:`~optuna_adso.FlopsCost`), each run
    paid up to its last report, as :func:`~optuna_adso.recommendation.flops_spent` counts it.
    """
    data = _data(study)
    settings = settings_for_study(study, sampler)
    runs = _runs(data, settings)
    title = "Fidelity and cost over the study"
    if not runs:
        return _empty(title, "no trial has run a mixture yet")
    label = _cost_label(settings)
    cumulative = np.cumsum([r.cost for r in runs])
    in_target_runs = cumulative / settings.target_cost
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("scale and steps of each run", f"cumulative {label}"))
    fig.add_trace(
        go.Scatter(
            x=[r.number for r in runs],
            y=[r.scale for r in runs],
            mode="markers",
            text=[_hover(r, data.spec.domains) for r in runs],
            hoverinfo="text",
            marker={"color": [r.last_step or 0 for r in runs], "colorscale": _COLORSCALE, "size": 10,
                    "colorbar": {"title": "steps run", "len": 0.45, "y": 0.78}},
            name="run",
        ),
        row=1,
        col=1,
    )
    if settings.target.scale is not None:
        fig.add_hline(y=settings.target.scale, line_dash="dash", annotation_text="target scale", row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=[r.number for r in runs],
            y=cumulative,
            mode="lines+markers",
            customdata=in_target_runs,
            hovertemplate="trial %{x}<br>%{y:.3g} " + label + "<br>= %{customdata:.2f} target runs<extra></extra>",
            name=f"cumulative {label}",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(type="log", title_text="model scale", row=1, col=1)
    fig.update_yaxes(title_text=label, row=2, col=1)
    fig.update_xaxes(title_text="trial", row=2, col=1)
    fig.update_layout(title=title, showlegend=False)
    return fig


# --- the recommendation as the study goes ----------------------------------------------------


def _prefix_study(study: optuna.Study, data: StudyView, n: int) -> optuna.Study:
    """An in-memory copy of the study's first ``n`` finished trials and its ADSO declarations."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line per point
    try:
        prefix = optuna.create_study(direction="maximize" if data.maximize else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    records.copy_declarations(study, prefix)
    finished = [t for t in sorted(data.trials, key=lambda t: t.number)[:n] if t.state.is_finished()]
    prefix.add_trials(finished)
    return prefix


def plot_recommendation_history(
    study: optuna.Study, *, n_points: int = 6, sampler: SettingsSource | None = None, n_std: float = 2.0
) -> go.Figure:
    """The recommendation's predicted value at the target vs cost spent, with a +-``n_std`` band.

    :func:`~optuna_adso.recommend` is recomputed on ``n_points`` prefixes of the study (the first
    trials, in order), so the figure shows how the answer and its uncertainty settled as compute
    was spent.  Each point costs one GP conditioning with stored hyperparameters (no refit).
    """
    as_int(n_points, "n_points", 1)
    data = _data(study)
    settings = settings_for_study(study, sampler)
    n = len(data.trials)
    title = "Recommendation at the target vs cost spent"
    sizes = sorted({int(round(x)) for x in np.linspace(min(3, n), n, n_points)} - {0})
    xs, means, stds, hover = [], [], [], []
    for m in sizes:
        rec = recommend(study if m == n else _prefix_study(study, data, m), sampler=settings)
        if not math.isfinite(rec.mean):
            continue
        xs.append(rec.flops_spent)
        means.append(rec.mean)
        stds.append(rec.std)
        hover.append(f"after {rec.n_trials} trials<br>" + "<br>".join(f"{d}: {w:.3f}" for d, w in rec.mixture.items()))
    if not xs:
        return _empty(title, "no model yet: the study needs a few more reports")
    mean, std = np.array(means), np.array(stds)
    label = _cost_label(settings)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs + xs[::-1], y=list(mean + n_std * std) + list((mean - n_std * std)[::-1]),
                             fill="toself", mode="lines", line={"width": 0}, fillcolor="rgba(31,119,180,0.2)",
                             hoverinfo="skip", name=f"+-{n_std:g} std"))
    fig.add_trace(go.Scatter(x=xs, y=means, mode="lines+markers", text=hover,
                             hovertemplate="%{x:.3g} " + label + "<br>predicted %{y:.4f}<br>%{text}<extra></extra>",
                             name="predicted value of the recommendation"))
    fig.update_layout(title=title, xaxis_title=f"{label} spent", yaxis_title=f"predicted value at {settings.target.describe()}")
    return fig


# --- how the best mixture moves with scale ---------------------------------------------------


def plot_optimum_shift(
    study: optuna.Study,
    *,
    scales: Sequence[float] | None = None,
    sampler: SettingsSource | None = None,
    risk_aversion: float = 1.0,
    n_candidates: int = 1024,
    seed: int = 0,
) -> go.Figure:
    """The mixture the surrogate predicts best at each scale (at the target step).

    One GP (fitted with the study's stored hyperparameters) is asked at every scale: the weights
    of the mixture minimizing ``mean + risk_aversion * std`` there, as :func:`recommend` does at
    the target.  A flat picture means small proxies can be trusted; lines that bend mean the best
    mixture changes with scale.  ``scales`` defaults to the declared scales and the target.
    """
    settings = settings_for_study(study, sampler)
    model = StudyModel.of(study, settings)
    target = settings.target
    title = "Predicted best mixture by model scale"
    if scales is None:
        scales = sorted(set(model.scale_choices if model.scale is not None else []) | ({target.scale} if target.scale else set()))
    scales = [float(s) for s in scales]
    if not scales or any(not (math.isfinite(s) and s > 0) for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")
    rng = np.random.default_rng(seed)
    try:
        with single_threaded():
            fitted = model.fit_surrogate(rng, now=len(model.trials), maxiter=0)
    except SurrogateFitError as exc:
        return _empty(title, f"no model yet ({exc})")
    anchors = np.unique(np.round(fitted.observations.weights, 10), axis=0)
    sign = -1.0 if model.maximize else 1.0
    best_w, best_mean, best_std = [], [], []
    log_step = math.log10(target.step)
    for s in scales:
        z = fitted.axes.z([math.log10(s)], [log_step])[0]
        w, mean, std = minimize_target_mean(fitted.surrogate, model.spec, rng, anchors, risk_aversion=risk_aversion,
                                            n_candidates=n_candidates, z=(float(z[0]), float(z[1])))
        best_w.append(w)
        best_mean.append(sign * mean)
        best_std.append(std)
    fig = go.Figure()
    for j, d in enumerate(model.spec.domains):
        fig.add_trace(go.Scatter(
            x=scales, y=[w[j] for w in best_w], mode="lines+markers", name=d,
            customdata=np.column_stack([best_mean, best_std]),
            hovertemplate=d + " %{y:.3f} at scale %{x:.3g}<br>predicted %{customdata[0]:.4f} "
            "+- %{customdata[1]:.4f}<extra></extra>",
        ))
    if target.scale is not None:
        fig.add_vline(x=target.scale, line_dash="dash", annotation_text="target")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="model scale",
                      yaxis_title=f"weight (at step {target.step:g})", yaxis_range=[0, 1])
    return fig


# --- per-domain losses -----------------------------------------------------------------------


def domain_losses(trial: FrozenTrial, prefix: str = DOMAIN_LOSS_PREFIX, nested: str = DOMAIN_LOSS_ATTR) -> dict[str, float]:
    """``{domain: loss}`` from the dict user attribute ``nested`` (what the pre-training
    objective writes) and user attributes ``<prefix><domain>`` (one number each)."""
    out: dict[str, float] = {}
    record = trial.user_attrs.get(nested)
    if isinstance(record, dict):
        out.update({str(k): float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    for key, value in trial.user_attrs.items():
        if key.startswith(prefix) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key[len(prefix):]] = float(value)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def plot_domain_losses(
    study: optuna.Study, *, top: int = 5, prefix: str = DOMAIN_LOSS_PREFIX, nested: str = DOMAIN_LOSS_ATTR,
    sampler: SettingsSource | None = None,
) -> go.Figure:
    """Per-domain validation losses of the ``top`` best trials at the largest scale that has them.

    Reads the user attribute ``val_losses`` (``{domain: loss}``, as the pre-training objective
    writes it) or attributes ``val_loss/<domain>``; trials are only compared within one scale.
    Without such attributes the figure says so.
    """
    as_int(top, "top", 1)
    data = _data(study)
    title = "Per-domain losses of the top trials"
    by_number = {t.number: t for t in data.trials}
    rows = [(r, domain_losses(by_number[r.number], prefix, nested)) for r in _runs(data, _optional_settings(study, sampler))]
    rows = [(r, losses) for r, losses in rows if losses and r.value is not None]
    if not rows:
        return _empty(title, f"no trial recorded per-domain losses (user attribute '{nested}' or '{prefix}<domain>')")
    scale = max(r.scale for r, _ in rows)
    rows = sorted([x for x in rows if x[0].scale == scale], key=lambda x: x[0].value, reverse=data.maximize)[:top]
    names = sorted({d for _, losses in rows for d in losses})
    fig = go.Figure()
    for r, losses in rows:
        fig.add_trace(go.Bar(x=names, y=[losses.get(d, math.nan) for d in names],
                             name=f"trial {r.number} ({r.value:.4f})", hovertext=_hover(r, data.spec.domains)))
    fig.update_layout(title=f"{title} (scale {scale:.3g})", barmode="group", xaxis_title="validation domain",
                      yaxis_title="loss")
    return fig


# --- static export ---------------------------------------------------------------------------


def find_browser() -> str | None:
    """A Chrome/Chromium for kaleido: ``$BROWSER_PATH``, else ``chromium``/``chrome`` on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


IMAGE_ATTEMPTS = 3
"""Static renders are retried: a loaded machine's browser occasionally fails one page."""


def write_image(fig: go.Figure, path: str | os.PathLike, *, width: int = 1000, height: int = 650,
                scale: float = 1.0) -> Path:
    """Write ``fig`` as a static image (format from the suffix: png, svg, pdf, jpeg, webp).

    Uses kaleido with the system's Chromium (never a download); raises ``RuntimeError`` saying
    how to install one when none is found.
    """
    import kaleido

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf", "jpeg", "jpg", "webp"):
        raise ValueError(f"path must end in .png, .svg, .pdf, .jpeg or .webp, got {str(path)!r}")
    browser = find_browser()
    if browser is None:
        raise RuntimeError(
            "write_image needs Chrome or Chromium: install it (Debian: apt-get install chromium) "
            "or set BROWSER_PATH to its executable"
        )
    opts = {"format": "jpeg" if fmt == "jpg" else fmt, "width": width, "height": height, "scale": scale}
    image = None
    for attempt in range(IMAGE_ATTEMPTS):
        try:
            image = kaleido.calc_fig_sync(fig, opts=opts, kopts={"path": browser})
            break
        except Exception as err:  # noqa: BLE001 (kaleido raises its own and JavaScript errors)
            # Under heavy CPU load the browser page sometimes runs kaleido's script before its
            # scopes load ("kaleido_scopes is not defined"); a fresh page renders it fine.
            if attempt + 1 == IMAGE_ATTEMPTS:
                raise RuntimeError(f"write_image: kaleido failed {IMAGE_ATTEMPTS} times on {path}: {err}") from err
    assert image is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
    return path


from optuna_adso.domain_plots import plot_domain_predictions, plot_tradeoff_front  # noqa: E402 (re-export)
from optuna_adso.scale_plots import plot_scale_fan  # noqa: E402 (re-export)
