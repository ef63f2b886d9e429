"""Seed replicates: how far a new training seed moves a run, where a study's runs share one seed.

Runs that share one seed (``PretrainObjective``'s default, and common practice: every mixture is
compared on the same initialization and data order) carry luck that is a smooth function of the
mixture, common to nearby mixtures and to every scale.  No model of those runs can tell it from
the mixture's own effect: the GP fits it as signal, and its intervals leave it out.  The demo
with ``--seed 2`` claimed 5.8260 +- 0.0016 for its recommendation; new seeds of that mixture
averaged 5.8964.

Only a run of a tried mixture with another seed shows that luck.  So once such a study has a few
complete runs at the anchor (the top runnable scale), ADSOSampler asks for a *replicate*: the
incumbent mixture again, at the anchor, marked so that :func:`trial_seed` hands its run a new
seed.  The pooled scatter of the replicated mixtures' runs (:func:`pooled_scatter`) is the
seed-to-seed variance, and :func:`shared_luck` gives it to ``predict`` and ``recommend``: added
to the expected value's variance (a new seed's luck is not averaged away by nearby runs that all
share the old one) and as the floor of one new run's scatter.

Replicates measure and do nothing else: the study model leaves them out of its observations.
Every other run shares one seed's luck, so the differences between mixtures, which is what the
search needs, are nearly free of it (common random numbers); a run with another seed's luck
would bias its own mixture against the rest.  On eight paired demo studies, replicates inside the
model made the recommendation worse (docs/demo-calibration.md).

Studies whose runs record no seed (the simulators, imported runs) or a seed of their own
(``seed_per_trial=True``: independent luck, which the GP models as noise) are left as they are.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_adso import records

if TYPE_CHECKING:
    from optuna_adso.study_model import StudyModel

REPLICATES_AFTER: tuple[int, ...] = (6, 12)
"""Complete anchor runs after which the first, second, ... replicate is due.  Two replicates are
two anchor runs out of the dozen or more a study makes there: enough to see whether the seed
matters at the scale of the gaps between mixtures, not to pin the variance down (two degrees of
freedom leave a factor of about 3 either way at 90%)."""


def run_seed(seed: int, trial_number: int) -> int:
    """The seed of trial ``trial_number``'s run in a study seeded ``seed``: independent draws
    for different trials, the same for the same trial (a retried or resumed run repeats itself)."""
    return int(np.random.SeedSequence([int(seed), int(trial_number)]).generate_state(1)[0])


def trial_seed(trial: optuna.Trial, seed: int) -> int:
    """The seed this trial's run trains with, recorded as its user attribute ``seed``.

    ``seed``, unless ADSOSampler scheduled the trial as a seed replicate; then a seed of its own
    (:func:`run_seed`).  Call it after ``suggest_mixture`` and ``suggest_scale`` (the proposal is
    made there).  Recording the seed is what lets the sampler see that runs share one.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    replicate = records.replicate_of(records.trial_attrs(trial.study, trial))
    chosen = int(seed) if replicate is None else run_seed(int(seed), trial.number)
    trial.set_user_attr(records.RUN_SEED, chosen)
    return chosen


@dataclass(frozen=True)
class SeedScatter:
    """The variance of one run's final value across seeds, pooled over replicated mixtures."""

    variance: float
    dof: int  # independent differences behind it
    n_mixtures: int

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def added_to(self, variance: Any, noise_std: float) -> tuple[Any, float]:
        """An expected value's variance (a float or an array) and one run's noise std, with the
        seed's luck added: the GP took the shared luck for signal, and a new seed brings its own."""
        return variance + self.variance, max(noise_std, self.std)

    def describe(self) -> str:
        return (f"the study's runs share one seed: a new seed moves a run by sd {self.std:.4g} (measured on "
                f"{self.n_mixtures} replicated mixture(s), {self.dof} degree(s) of freedom); added to the "
                "std and to one new run's scatter")


def pooled_scatter(groups: Sequence[Sequence[float]]) -> SeedScatter | None:
    """Pooled within-group variance of the final values of runs of one mixture with different
    seeds, one group per mixture; None while no group has two finite values."""
    ss, dof, n = 0.0, 0, 0
    for group in groups:
        g = np.asarray(group, dtype=float)
        g = g[np.isfinite(g)]
        if len(g) < 2:
            continue
        ss += float(((g - g.mean()) ** 2).sum())
        dof += len(g) - 1
        n += 1
    return None if dof == 0 else SeedScatter(ss / dof, dof, n)


def complete_anchor_runs(model: StudyModel) -> list[FrozenTrial]:
    """The complete anchor trials, replicates included, that have a value and a known mixture."""
    held = model.held_points
    return [t for t in model.complete_anchor_trials() if t.value is not None and held[t.number] is not None]


def _mixture_key(model: StudyModel, t: FrozenTrial) -> tuple[float, ...]:
    held = model.held_points[t.number]
    assert held is not None
    return tuple(np.round(held.weights, 6).tolist())


def runs_share_a_seed(model: StudyModel) -> bool:
    """Whether complete anchor runs of two different mixtures recorded the same seed."""
    mixtures_of_seed: dict[int, set[tuple[float, ...]]] = defaultdict(set)
    for t in complete_anchor_runs(model):
        seed = records.run_seed_of(t)
        if seed is not None:
            mixtures_of_seed[seed].add(_mixture_key(model, t))
    return any(len(m) >= 2 for m in mixtures_of_seed.values())


def seed_groups(model: StudyModel) -> list[list[float]]:
    """Final values of the complete anchor runs, grouped by mixture, one per recorded seed (a run
    whose seed its group already holds repeats that run's luck; it is no new draw)."""
    groups: dict[tuple[float, ...], dict[int, float]] = defaultdict(dict)
    for t in complete_anchor_runs(model):
        seed = records.run_seed_of(t)
        if seed is not None:
            groups[_mixture_key(model, t)].setdefault(seed, float(t.value))  # type: ignore[arg-type]
    return [list(by_seed.values()) for by_seed in groups.values() if len(by_seed) >= 2]


def shared_luck(model: StudyModel) -> SeedScatter | None:
    """The seed-to-seed scatter at the anchor, where the study's runs share one seed and
    replicates measured it; None otherwise.  Only for the reported value: a per-domain
    objective's units are not those of the runs' final values."""
    if model.objective is not None or not runs_share_a_seed(model):
        return None
    return pooled_scatter(seed_groups(model))


UNMEASURED_NOTE = (
    "the study's runs share one seed and no seed replicate has completed at the top runnable scale yet: the std "
    "leaves out that seed's luck, which a run with another seed does not share (ADSOSampler schedules replicates "
    f"after {REPLICATES_AFTER[0]} complete runs there)"
)

IGNORED_NOTE = (
    "the study's runs share one seed, but a seed replicate ran with that same seed: have the objective train "
    "with optuna_adso.trial_seed(trial, seed), which hands a replicate a new seed; until then the std leaves "
    "out that seed's luck and no more replicates are scheduled"
)


def luck_note(model: StudyModel, luck: SeedScatter | None) -> str | None:
    """What a user should read about seed luck beside an interval, if anything."""
    if luck is not None:
        return luck.describe()
    if model.objective is None and runs_share_a_seed(model):
        return IGNORED_NOTE if replicates_ignored(model) else UNMEASURED_NOTE
    return None


def replicates_scheduled(model: StudyModel) -> tuple[int, int]:
    """(replicates running or complete, replicates scheduled in all): one that was pruned or
    failed measured nothing and may be scheduled again, but not without end."""
    live, total = 0, 0
    for t in model.trials:
        if not records.is_seed_replicate(t):
            continue
        total += 1
        live += t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE)
    return live, total


def replicates_ignored(model: StudyModel) -> bool:
    """Whether a complete replicate ran with the seed of the run it repeats (or recorded none):
    the objective does not hand replicates a new seed (it does not call :func:`trial_seed`), so
    more of them would only repeat runs."""
    by_number = {t.number: t for t in model.trials}
    for t in model.trials:
        number = records.replicate_of(t.system_attrs)
        if number is None or t.state != TrialState.COMPLETE or number not in by_number:
            continue
        seed = records.run_seed_of(t)
        if seed is None or seed == records.run_seed_of(by_number[number]):
            return True
    return False


def replicate_due(model: StudyModel, predicted: Callable[[np.ndarray], np.ndarray]) -> FrozenTrial | None:
    """The complete anchor run whose mixture a seed replicate should repeat now, or None.

    Due when the study's runs share one seed and fewer replicates are running or complete than
    :data:`REPLICATES_AFTER` asks for at its number of complete anchor runs (at most twice that
    many are ever scheduled), and no replicate has shown that the objective ignores them
    (:func:`replicates_ignored`).  The run chosen is the one whose mixture ``predicted``
    (weights -> predicted value at the anchor, lower is better) puts first among those no
    replicate has repeated yet: the mixture the answer rests on.  It was selected on its luck
    among others, so its replicate rather overstates the scatter than understates it.
    """
    if not runs_share_a_seed(model) or replicates_ignored(model):
        return None
    runs = [t for t in complete_anchor_runs(model) if records.run_seed_of(t) is not None]
    due = sum(1 for n in REPLICATES_AFTER if len(runs) >= n)
    live, total = replicates_scheduled(model)
    if live >= due or total >= 2 * due:
        return None
    replicated = {_mixture_key(model, t) for t in model.trials
                  if records.is_seed_replicate(t) and model.held_points.get(t.number) is not None}
    fresh = [t for t in runs if _mixture_key(model, t) not in replicated]
    if not fresh:
        return None
    weights = np.vstack([model.held_points[t.number].weights for t in fresh])  # type: ignore[union-attr]
    return fresh[int(np.argmin(predicted(weights)))]
