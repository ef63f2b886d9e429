"""The multi-fidelity, multi-scale Gaussian process: (mixture, scale, step) -> value.

Knows nothing of Optuna; it is fitted on arrays.  Inputs are the k mixture weights and two
fidelity coordinates, ``z_scale`` and ``z_step``: log10 of parameters and steps, shifted so that the
target fidelity sits at 0 and scaled so that the smallest fidelity sits near -1.

Kernel (``kind="coregionalized"``, the default)::

    k(x, x') = k_w(w, w') * phi(z)^T B phi(z')  +  k_curve(z, z')

with ``phi(z) = [1, z_scale, z_step]`` and ``B`` a learned positive semi-definite 3x3 matrix.  The
mixture effect is thus ``g0(w) + z_scale g1(w) + z_step g2(w)`` with correlated latent GPs: how
the effect of a mixture at a small scale or an early step relates to its effect at the target is
learned from the data, and may be weak or of opposite sign (``corr`` between two fidelities can be
negative), unlike a product kernel whose cross-fidelity correlation is always positive.  At the
target (z = 0) the effect is ``g0``.  ``k_curve`` models the shared learning curve of all mixtures;
the mean is linear in (z_scale, z_step): a scaling law in log space.  The correlations in ``B``
have an LKJ-shaped prior (:class:`CorrelationShrinkagePrior`): a correlation between a mixture's
level at the target and its slope across scales, which is what makes a cheap run speak for the
target, has to be shown by the runs.

``kind="coregionalized-scaling-law"``: a scaling law per mixture, ``L(w, N) = E(w) + A(w) N^-a``.
The mean is a power law with a floor in parameters and steps (:class:`FidelityPowerLawMean`), and
so is the mixture effect's trend: ``phi(z) = [1, h(z_scale), h(z_step)]`` with ``h`` the same
saturating curve (rates of their own).  It states values beyond the runs, where a straight line
in log scale carries the common trend and every mixture's gain on for ever (see
:meth:`optuna_adso.study_model.StudyModel.fit_stated`); the search keeps the straight line.

Noise (``kind="coregionalized"``): one offset per run, shared by all its reports, beside
independent per-report noise (:class:`RunEffectLikelihood`).  A run's reports differ from its
mixture's expected curve by much more than they differ from each other: a GP told that the
scatter is per-report believes twenty reports of one lucky run pin its mixture down, and bends
the mixture effect through every run's offset.

``kind="product-rbf"`` is the paper's model (arXiv 2503.21023): one ARD RBF kernel over all inputs
and a linear mean.

``kind="mixture"`` ignores the fidelity coordinates: a Matern-5/2 ARD kernel over the weights and
a constant mean, fitted on runs of one fidelity only.  It is the target-only model (what a
GPSampler at that fidelity knows), the hedge the sampler falls back on while cheap fidelities
have not earned their place (see :mod:`optuna_adso.fidelity_trust`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import gpytorch
import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan, Interval
from gpytorch.kernels import Kernel, MaternKernel, RBFKernel, ScaleKernel
from gpytorch.means import Mean
from gpytorch.priors import GammaPrior, LogNormalPrior, Prior

DTYPE = torch.float64


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread: GP work here is many small ops, where thread pools only contend
    (several-fold slower with two processes on two cores).  The previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_FIT_SEED = 0x6F5D  # the torch RNG seed of every fit's retries (see MultiFidelitySurrogate.fit)


class SurrogateFitError(RuntimeError):
    """The GP could not be fitted (non-PSD matrix, NaN); callers fall back to a safe proposal."""


@dataclass(frozen=True)
class FidelityAxes:
    """Maps (log10 scale, log10 step) to the model's z coordinates; the target maps to (0, 0)."""

    target_log_scale: float
    target_log_step: float
    scale_span: float
    step_span: float

    @classmethod
    def from_ranges(
        cls, target_log_scale: float, target_log_step: float, min_log_scale: float, min_log_step: float
    ) -> FidelityAxes:
        return cls(
            target_log_scale,
            target_log_step,
            max(abs(target_log_scale - min_log_scale), 0.5),
            max(abs(target_log_step - min_log_step), 0.5),
        )

    def z(self, log_scale: np.ndarray, log_step: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [
                (np.asarray(log_scale, float) - self.target_log_scale) / self.scale_span,
                (np.asarray(log_step, float) - self.target_log_step) / self.step_span,
            ]
        )


def inputs_at(weights: np.ndarray, z: tuple[float, float] | np.ndarray) -> np.ndarray:
    """Model inputs of mixtures ``weights`` (n, k) at one fidelity ``z`` (model coordinates)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    return np.column_stack([weights, np.broadcast_to(np.asarray(z, dtype=float), (len(weights), 2))])


def target_inputs(weights: np.ndarray) -> np.ndarray:
    """Model inputs of mixtures at the target fidelity, which :class:`FidelityAxes` puts at z = 0."""
    return inputs_at(weights, (0.0, 0.0))


class _FlatKernel(Kernel):
    """A kernel with no batch dimensions, itself or in its parts.

    gpytorch derives ``batch_shape`` on every access by walking all sub-modules and broadcasting
    their shapes; it is read a dozen times per evaluation of the marginal likelihood (a tenth of
    a fit's time under cProfile, a few percent without).  Our kernels are never batched, so their
    own (empty) shape is the answer."""

    @property
    def batch_shape(self) -> torch.Size:
        return self._batch_shape

    @batch_shape.setter
    def batch_shape(self, value: torch.Size) -> None:
        self._batch_shape = value


def saturating(z: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """``h(z; a) = (1 - exp(-a z)) / a`` per fidelity coordinate: a power law with a floor in
    parameters (or steps), shifted to 0 at the target with slope 1 there."""
    return -torch.expm1(-rates * z) / rates


class SaturationRates:
    """The rates ``(a, b)`` of :func:`saturating` in scale and steps, for a gpytorch module:
    log-normal prior with median 1 (a Chinchilla-like exponent of 0.3 over the 1.7 decades of a
    20M-1B ladder), so that a trend flattens beyond the runs unless the data says it does not."""

    def _register_rates(self) -> None:
        self.register_parameter("raw_rates", torch.nn.Parameter(torch.zeros(2, dtype=DTYPE)))
        self.register_constraint("raw_rates", Interval(1e-4, 20.0))
        self.register_prior("rates_prior", LogNormalPrior(0.0, 0.75), lambda m: m.rates, lambda m, v: m._set_rates(v))
        self._set_rates(torch.ones(2, dtype=DTYPE))  # the prior's median

    @property
    def rates(self) -> torch.Tensor:
        return self.raw_rates_constraint.transform(self.raw_rates)

    def _set_rates(self, value: torch.Tensor) -> None:
        self.initialize(raw_rates=self.raw_rates_constraint.inverse_transform(torch.as_tensor(value, dtype=DTYPE)))


class CoregionalizedFidelityKernel(SaturationRates, _FlatKernel):
    """``k_w(w, w') * (phi(z)^T B phi(z') + s_r * k_r(z, z'))``.

    ``phi(z) = [1, z_scale, z_step]`` and ``B = L L^T + diag`` carry the part of a mixture's effect
    that changes linearly with log scale and log steps, with a learned (possibly negative)
    correlation between fidelities.  The residual ``s_r * k_r`` (an RBF over z) is the part that
    no other fidelity explains: without it, three cheap runs at a mixture would pin down its
    target value exactly, an overconfidence that makes a sampler never pay for the target.

    ``saturating``: ``phi(z) = [1, h(z_scale; a), h(z_step; b)]`` (:func:`saturating`), each
    mixture's effect a power law with a floor in scale and steps instead of a straight line in
    log scale.  Inside the runs the two differ little; beyond them the straight line carries a
    mixture's gain with scale on for ever.
    """

    def __init__(self, n_weights: int, n_features: int = 3, saturating: bool = False) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.n_features = n_features
        self.saturating = saturating
        if saturating:  # phi(z) = [1, h(z_scale; a), h(z_step; b)]
            self._register_rates()
        self.mixture_kernel = MaternKernel(
            nu=2.5,
            ard_num_dims=n_weights,
            lengthscale_prior=LogNormalPrior(math.log(0.5), 1.0),
            lengthscale_constraint=Interval(1e-2, 20.0),
        )
        init = torch.zeros(n_features, n_features, dtype=DTYPE)
        init[0, 0] = 1.0
        init[1, 1] = init[2, 2] = 0.3
        self.register_parameter("raw_factor", torch.nn.Parameter(init))
        self.register_parameter("raw_diag", torch.nn.Parameter(torch.full((n_features,), -6.0, dtype=DTYPE)))
        if not saturating:  # the stating GP's intervals were calibrated without it (issue 19)
            self.register_prior(
                "coregionalization_prior", CorrelationShrinkagePrior(COREGIONALIZATION_ETA),
                lambda m: m.coregionalization, _not_sampled,
            )
        self.residual = RBFKernel(
            ard_num_dims=2,
            lengthscale_prior=LogNormalPrior(math.log(0.3), 1.0),
            lengthscale_constraint=Interval(1e-2, 10.0),
        )
        self.register_parameter("raw_residual_scale", torch.nn.Parameter(torch.tensor(-2.0, dtype=DTYPE)))
        self.register_prior(
            "residual_scale_prior",
            GammaPrior(2.0, 10.0),
            lambda m: m.residual_scale,
            lambda m, v: m._set_residual_scale(v),
        )

    def _set_residual_scale(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=DTYPE).clamp_min(1e-6)
        self.raw_residual_scale.data.copy_(torch.log(torch.expm1(value)).reshape(()))

    @property
    def residual_scale(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_residual_scale)

    @property
    def coregionalization(self) -> torch.Tensor:
        lower = torch.tril(self.raw_factor)
        return lower @ lower.T + torch.diag(torch.nn.functional.softplus(self.raw_diag))

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(z.shape[:-1] + (1,), dtype=z.dtype, device=z.device)
        if self.saturating:
            z = saturating(z[..., :2], self.rates)
        return torch.cat([ones, z[..., : self.n_features - 1]], dim=-1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        k = self.n_weights
        kw = self.mixture_kernel.forward(x1[..., :k], x2[..., :k], diag=diag)
        f1 = self._features(x1[..., k:])
        f2 = self._features(x2[..., k:])
        b = self.coregionalization
        if diag:
            kz = ((f1 @ b) * f2).sum(-1)
        else:
            kz = f1 @ b @ f2.transpose(-1, -2)
        kr = self.residual.forward(x1[..., k:], x2[..., k:], diag=diag)
        return kw * (kz + self.residual_scale * kr)


class CurveKernel(_FlatKernel):
    """The shared learning curve: an RBF over the fidelity coordinates only."""

    def __init__(self, n_weights: int) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.inner = ScaleKernel(
            RBFKernel(ard_num_dims=2, lengthscale_prior=LogNormalPrior(math.log(0.5), 1.0)),
            outputscale_prior=GammaPrior(2.0, 4.0),
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        k = self.n_weights
        return self.inner.forward(x1[..., k:], x2[..., k:], diag=diag)


COREGIONALIZATION_ETA = 2.0
"""The LKJ shape of the prior on the correlations in ``B`` (1: flat; larger: nearer 0)."""


class CorrelationShrinkagePrior(Prior):
    """An LKJ-shaped prior on the correlations of a covariance matrix ``B``:
    ``log p(B) = (eta - 1) log det C`` (up to a constant), ``C`` the correlation matrix of ``B``.

    Why: how a mixture's level at the target goes with its slope across scales is what lets a
    cheap run speak for the target, and it is the weakest-identified number in the model: where
    few mixtures ran at both a small scale and the anchor, the likelihood hardly changes with it.
    Unpriored, the fit on an uninformative world (synth-10: 10M losses uncorrelated with the
    target's) put it at -0.9, the acquisition read a 0.9 correlation between 10M and the target
    into it, and studies spent up to 115 runs in a row at 10M.  With the prior a correlation
    must be earned by runs that show it; ``eta = 2`` costs a correlation of 0.9 1.7 nats.

    Not gpytorch's ``LKJPrior``: it scores the Cholesky factor of the correlation matrix (torch's
    ``LKJCholesky`` density, whose Jacobian terms remain), so even at ``eta = 1`` it is not flat
    (a correlation of 0.9 costs 0.83 nats there).
    """

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive_definite

    def __init__(self, eta: float) -> None:
        super().__init__(validate_args=False)
        self.eta = float(eta)

    def log_prob(self, b: torch.Tensor) -> torch.Tensor:
        d = torch.sqrt(torch.diagonal(b, dim1=-2, dim2=-1))
        chol, _ = torch.linalg.cholesky_ex(b / (d.unsqueeze(-1) * d.unsqueeze(-2)))
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return (self.eta - 1.0) * log_det


def _not_sampled(module: Kernel, value: torch.Tensor) -> None:
    """Setting closure of a prior that is not sampled (its ``sample`` raises NotImplementedError,
    which BoTorch's retry skips): retries start from the current values."""
    raise NotImplementedError


class InverseSquaredLengthscalePrior(Prior):
    """Optuna GPSampler's prior on a lengthscale ``l``, as a density on ``l`` (up to a constant):
    ``log p(l) = -0.1 (l^2 + 1 / l^2)``, i.e. ``-(0.1 / isl + 0.1 isl)`` on the inverse squared
    lengthscale.  Unlike a log-normal it penalizes short lengthscales steeply (10 nats a
    dimension at l = 0.1), so a GP on a dozen noisy runs explains their scatter as noise rather
    than threading a wiggly function through every lucky run."""

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive

    def __init__(self) -> None:
        super().__init__(validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -0.1 * (x**2 + x.pow(-2))


class MixtureOnlyKernel(_FlatKernel):
    """``s * Matern52(w, w')``: the weights only, whatever the fidelity coordinates say.

    Its priors are Optuna GPSampler's (inverse-squared-lengthscale prior, kernel scale
    Gamma(2, 1); noise Gamma(1.1, 30), see :func:`_noise_prior`): it is the model a GPSampler at
    the anchor would have, and the hedge must be at least that strong.  Measured offline on the
    benchmark's noisy 8- and 11-domain worlds (25 runs at random mixtures, 12 draws), the
    regret of the mixture it recommends fell from 0.51 (earlier log-normal priors) to 0.44 on
    synth-16 and from 0.62 to 0.55 on synth-11, p90 from 0.76 to 0.61 and from 0.87 to 0.64."""

    def __init__(self, n_weights: int) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.inner = ScaleKernel(
            MaternKernel(
                nu=2.5,
                ard_num_dims=n_weights,
                lengthscale_prior=InverseSquaredLengthscalePrior(),
                lengthscale_constraint=Interval(1e-2, 20.0),
            ),
            outputscale_prior=GammaPrior(2.0, 1.0),
        )

    @property
    def outputscale(self) -> torch.Tensor:
        return self.inner.outputscale

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        k = self.n_weights
        return self.inner.forward(x1[..., :k], x2[..., :k], diag=diag)


class FidelityLinearMean(Mean):
    """c0 + c1 z_scale + c2 z_step: a power law in parameters and steps, in log space."""

    def __init__(self, n_weights: int) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.register_parameter("weights", torch.nn.Parameter(torch.zeros(2, dtype=DTYPE)))
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(1, dtype=DTYPE)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.n_weights :] @ self.weights + self.bias


class FidelityPowerLawMean(SaturationRates, Mean):
    """``c0 + c1 h(z_scale; a) + c2 h(z_step; b)`` with ``h(z; a) = (1 - exp(-a z)) / a``.

    A power law with a floor in parameters and in steps (``L = E + A N^-alpha``, as Data Mixing
    Laws and the mixture scaling laws fit): in the fidelity coordinates ``A N^-alpha`` is an
    exponential in ``z``, and ``h`` is that curve shifted to 0 at the target with slope 1 there.
    As ``a -> 0`` it is :class:`FidelityLinearMean`'s straight line, which extrapolates the trend
    for ever; the rates' prior (:class:`SaturationRates`) makes the trend flatten beyond the runs
    unless the data says it does not.
    """

    def __init__(self, n_weights: int) -> None:
        super().__init__()
        self.n_weights = n_weights
        self.register_parameter("weights", torch.nn.Parameter(torch.zeros(2, dtype=DTYPE)))
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(1, dtype=DTYPE)))
        self._register_rates()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return saturating(x[..., self.n_weights :], self.rates) @ self.weights + self.bias


class SumKernel(_FlatKernel):
    def __init__(self, a: Kernel, b: Kernel) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x1, x2, diag: bool = False, **params):
        return self.a.forward(x1, x2, diag=diag) + self.b.forward(x1, x2, diag=diag)


SCALING_LAW_KIND = "coregionalized-scaling-law"
"""The scaling law per mixture that states values beyond the runs (see the module docstring)."""

COREGIONALIZED_KINDS = ("coregionalized", SCALING_LAW_KIND)
"""The kinds with the coregionalized kernel and one offset per run (they differ in how the mean
and each mixture's trend follow scale and steps: straight lines in log scale, or power laws)."""


SHAPE_LOG_SD = 0.7
"""Spread (in log lengthscale) of the prior a swarm's shape sets: the lengthscales fitted at 20M and
at the top scale on the same 256 mixtures differ by a factor 1.2 to 2.2 (rms of the log ratio 0.19
to 0.79 over the paper simulator's objectives and eight synthetic worlds)."""


def mixture_kernel(covar: Kernel) -> MaternKernel:
    """The kernel over the weights inside a GP's covariance (every kind but ``product-rbf``)."""
    if isinstance(covar, SumKernel):
        covar = covar.a
    if isinstance(covar, CoregionalizedFidelityKernel):
        return covar.mixture_kernel
    if isinstance(covar, MixtureOnlyKernel):
        return covar.inner.base_kernel
    raise ValueError(f"no mixture kernel in {type(covar).__name__}")


def _shaped(covar: Kernel, shape: np.ndarray) -> None:
    """Centre the mixture kernel's lengthscale prior on ``shape`` (one lengthscale per domain) and
    start there: what a swarm of small runs says about which weights matter, and how sharply."""
    kernel = mixture_kernel(covar)
    loc = torch.log(torch.as_tensor(np.asarray(shape, dtype=float), dtype=DTYPE))
    kernel.register_prior(
        "lengthscale_prior", LogNormalPrior(loc, torch.tensor(SHAPE_LOG_SD, dtype=DTYPE)),
        lambda m: m.lengthscale, lambda m, v: m._set_lengthscale(v),
    )
    bounds = kernel.raw_lengthscale_constraint
    lower, upper = float(bounds.lower_bound), float(bounds.upper_bound)  # start just inside them
    kernel.lengthscale = torch.exp(loc).clamp(lower * 1.1, upper * 0.995).reshape(kernel.lengthscale.shape)


def _build_modules(kind: str, n_weights: int, shape: np.ndarray | None = None) -> tuple[Kernel, Mean]:
    covar, mean = _unshaped_modules(kind, n_weights)
    if shape is not None:
        if len(shape) != n_weights:
            raise ValueError(f"shape must give one lengthscale per domain ({n_weights}), got {len(shape)}")
        _shaped(covar, shape)
    return covar, mean


def _unshaped_modules(kind: str, n_weights: int) -> tuple[Kernel, Mean]:
    if kind == "coregionalized":
        return SumKernel(CoregionalizedFidelityKernel(n_weights), CurveKernel(n_weights)), FidelityLinearMean(n_weights)
    if kind == SCALING_LAW_KIND:
        covar = SumKernel(CoregionalizedFidelityKernel(n_weights, saturating=True), CurveKernel(n_weights))
        return covar, FidelityPowerLawMean(n_weights)
    if kind == "product-rbf":
        covar = ScaleKernel(
            RBFKernel(ard_num_dims=n_weights + 2, lengthscale_prior=LogNormalPrior(math.log(0.5), 1.0))
        )
        return covar, gpytorch.means.LinearMean(n_weights + 2)
    if kind == "mixture":
        return MixtureOnlyKernel(n_weights), gpytorch.means.ConstantMean()
    raise ValueError(f"unknown surrogate kind {kind!r}; expected one of {[*COREGIONALIZED_KINDS, 'product-rbf', 'mixture']}")


def same_run_matrix(groups: np.ndarray | None, n: int) -> torch.Tensor:
    """``G[i, j] = 1`` where rows i and j are reports of one run; each row its own run when
    ``groups`` is None."""
    if groups is None:
        return torch.eye(n, dtype=DTYPE)
    g = torch.as_tensor(np.asarray(groups, dtype=np.int64))
    if len(g) != n:
        raise ValueError(f"groups must label the {n} training rows, got {len(g)} labels")
    return (g[:, None] == g[None, :]).to(DTYPE)


class RunEffectLikelihood(gpytorch.likelihoods.GaussianLikelihood):
    """Per-report noise plus a run-level random effect: ``Cov(y) = K + s_n I + s_r G`` over the
    training rows (``G``: :func:`same_run_matrix`).  Any other rows (a prediction, a fantasy)
    are reports of new runs: their offsets are independent of every training run's."""

    def __init__(self, groups: np.ndarray | None, n: int, noise_prior: Prior) -> None:
        super().__init__(noise_prior=noise_prior, noise_constraint=GreaterThan(1e-6))
        # starts at 0.02 (standardized): from there the fit finds a run effect where there is one and
        # drops it where there is none; from near 0 it settles for a wiggly mixture effect through
        # every run's offset (a local optimum of slightly higher likelihood that predicts the
        # target 6x worse on arrays with offsets, tests/test_surrogate.py)
        self.register_parameter("raw_run_variance", torch.nn.Parameter(torch.tensor(-3.9, dtype=DTYPE)))
        self.register_prior(
            "run_variance_prior", LogNormalPrior(math.log(1e-3), 2.0),
            lambda m: m.run_variance, lambda m, v: m._set_run_variance(v),
        )
        self.register_buffer("same_run", same_run_matrix(groups, n))

    @property
    def run_variance(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_run_variance) + 1e-9

    def _set_run_variance(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=DTYPE).clamp_min(1e-6)
        self.raw_run_variance.data.copy_(torch.log(torch.expm1(value)).reshape(()))

    def marginal(self, function_dist, *args, **kwargs):
        marginal = super().marginal(function_dist, *args, **kwargs)
        n = function_dist.mean.shape[-1]
        if n != self.same_run.shape[-1]:
            return marginal  # not the training rows: new runs
        return marginal.__class__(marginal.mean, marginal.lazy_covariance_matrix + self.run_variance * self.same_run)


def training_noise(likelihood: gpytorch.likelihoods.GaussianLikelihood, n: int) -> torch.Tensor:
    """The noise covariance of the ``n`` training rows: per-report noise, plus the run effect."""
    noise = likelihood.noise.reshape(()).clamp_min(1e-9) * torch.eye(n, dtype=DTYPE)
    if isinstance(likelihood, RunEffectLikelihood):
        noise = noise + likelihood.run_variance * likelihood.same_run
    return noise


def _likelihood(kind: str, groups: np.ndarray | None, n: int) -> gpytorch.likelihoods.GaussianLikelihood:
    if kind in COREGIONALIZED_KINDS:
        return RunEffectLikelihood(groups, n, _noise_prior(kind))
    return gpytorch.likelihoods.GaussianLikelihood(noise_prior=_noise_prior(kind), noise_constraint=GreaterThan(1e-6))


def _noise_prior(kind: str) -> Prior:
    """Observation noise prior (standardized units).  The multi-fidelity GP's noise is pinned down
    by the many reports of every learning curve, and a prior near noiseless suits it; the
    anchor-only GP sees one final value a run, and gets GPSampler's Gamma(1.1, 30)."""
    if kind == "mixture":
        return GammaPrior(1.1, 30.0)
    return LogNormalPrior(math.log(1e-3), 2.0)


class MultiFidelitySurrogate:
    """A fitted GP over (weights, z) with standardized outputs; predicts in original units."""

    def __init__(self, kind: str = "coregionalized", max_points: int = 400, shape: np.ndarray | None = None) -> None:
        """``shape``: the mixture kernel's lengthscales, one per domain, that its prior is centred
        on (see :func:`optuna_adso.swarm_shape.swarm_shape`); None: the kind's own prior."""
        self.kind = kind
        self.max_points = max_points
        self.shape = None if shape is None else np.asarray(shape, dtype=float)
        self.model: SingleTaskGP | None = None
        self._y_mean = 0.0
        self._y_std = 1.0
        self.n_weights = 0
        self.refitted = False
        self.groups: np.ndarray | None = None  # the run of each training row
        self._cache: _ExactPosterior | None = None

    # -- fitting --------------------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_weights: int,
        init_state: list[float] | None = None,
        maxiter: int | None = None,
        y_scale_floor: float = 0.0,
        groups: np.ndarray | None = None,
    ) -> MultiFidelitySurrogate:
        """Fit hyperparameters by MAP; warm-starts from ``init_state`` (see :meth:`state`).

        ``groups``: the run of each row (reports of one run share its offset, see
        :class:`RunEffectLikelihood`); None: every row is a run of its own.

        ``y_scale_floor``: the least std the outputs are standardized by.  Runs clustered in one
        region have a small spread, and a GP in those units believes nothing elsewhere can be
        much better; a floor from a model that saw more (the study's model's mixture effect)
        keeps exploration honest.

        Deterministic: the paper's linear mean starts from random weights and a failed attempt
        retries from hyperparameters drawn from their priors, both with torch's global RNG, so a
        fit runs on its own seeded copy of it (the caller's is left untouched) and depends on its
        data only, not on what ran before in the process.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_FIT_SEED)
            return self._fit(
                x, y, n_weights=n_weights, init_state=init_state, maxiter=maxiter, y_scale_floor=y_scale_floor,
                groups=groups,
            )

    def _fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_weights: int,
        init_state: list[float] | None,
        maxiter: int | None,
        y_scale_floor: float,
        groups: np.ndarray | None = None,
    ) -> MultiFidelitySurrogate:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 2 or x.shape[1] != n_weights + 2 or len(x) != len(y):
            raise ValueError(f"x must be (n, {n_weights + 2}) and y (n,), got {x.shape} and {y.shape}")
        if groups is not None and len(groups) != len(y):
            raise ValueError(f"groups must label the {len(y)} rows, got {len(groups)} labels")
        keep = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
        x, y = x[keep], y[keep]
        if len(y) == 0:
            raise SurrogateFitError("no finite observations to fit")
        self.groups = None if groups is None else np.asarray(groups)[keep]
        self.n_weights = n_weights
        self._y_mean = float(y.mean())
        spread = float(y.std()) if len(y) > 1 and y.std() > 1e-12 else 0.0
        floor = y_scale_floor if math.isfinite(y_scale_floor) and y_scale_floor > 0.0 else 0.0
        self._y_std = max(spread, floor) or 1.0
        train_x = torch.tensor(x, dtype=DTYPE)
        train_y = torch.tensor((y - self._y_mean) / self._y_std, dtype=DTYPE).unsqueeze(-1)
        covar, mean = _build_modules(self.kind, n_weights, self.shape)
        likelihood = _likelihood(self.kind, self.groups, len(y))
        model = SingleTaskGP(
            train_x, train_y, likelihood=likelihood, covar_module=covar, mean_module=mean,
            outcome_transform=None,
        ).to(DTYPE)
        warm = False
        if init_state is not None:
            warm = self._load_state(model, init_state)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)
        iters = maxiter if maxiter is not None else (60 if warm else 200)
        if not warm:
            iters = max(iters, 100)  # a cold start always gets a real fit
        try:
            if iters > 0:
                # Python overhead only, no number changes (replayed fits are bitwise identical):
                # debug(False) skips gpytorch's shape and argument checks on every evaluation,
                # and the kernel matrix is computed at once rather than through a lazy tensor.
                with warnings.catch_warnings(), gpytorch.settings.debug(False), \
                        gpytorch.settings.lazily_evaluate_kernels(False):
                    warnings.simplefilter("ignore")
                    fit_gpytorch_mll(
                        mll,
                        optimizer_kwargs={"options": {"maxiter": iters, "maxfun": int(1.5 * iters)}},
                        max_attempts=2,
                    )
            model.eval()
            cache = _ExactPosterior.of(model)
            with torch.no_grad():
                probe = cache.moments(train_x[:1])[0]
            if not torch.isfinite(probe).all() or not all(
                torch.isfinite(p).all() for p in model.parameters()
            ):
                raise SurrogateFitError("GP hyperparameters became non-finite")
        except SurrogateFitError:
            raise
        except Exception as exc:  # NotPSDError, NanError, linalg errors: never crash a study
            raise SurrogateFitError(f"GP fit failed: {exc}") from exc
        self.model, self._cache = model, cache
        return self

    def state(self) -> list[float]:
        """Hyperparameters as a flat list of floats, small enough for a storage attribute."""
        assert self.model is not None
        return [round(float(v), 6) for p in self.model.parameters() for v in p.detach().flatten()]

    @staticmethod
    def _load_state(model: SingleTaskGP, state: list[float]) -> bool:
        params = list(model.parameters())
        if sum(p.numel() for p in params) != len(state):
            return False
        flat = torch.tensor(state, dtype=DTYPE)
        if not torch.isfinite(flat).all():
            return False
        with torch.no_grad():
            i = 0
            for p in params:
                p.copy_(flat[i : i + p.numel()].view_as(p))
                i += p.numel()
        return True

    def condition_on(self, x: np.ndarray, y: np.ndarray) -> MultiFidelitySurrogate:
        """A copy with extra observations (e.g. fantasies) and the same hyperparameters."""
        assert self.model is not None
        if len(x) == 0:
            return self
        new = MultiFidelitySurrogate(self.kind, self.max_points, self.shape)
        new.n_weights, new._y_mean, new._y_std = self.n_weights, self._y_mean, self._y_std
        tx = torch.cat([self.model.train_inputs[0], torch.tensor(np.asarray(x), dtype=DTYPE)])
        ty = torch.cat(
            [self.model.train_targets, torch.tensor((np.asarray(y) - self._y_mean) / self._y_std, dtype=DTYPE)]
        )
        covar, mean = _build_modules(self.kind, self.n_weights)
        n_old = len(self.model.train_targets)
        old = self.groups if self.groups is not None else np.arange(n_old)
        fresh = (old.max() + 1 if len(old) else 0) + np.arange(len(x))  # new rows: new runs
        new.groups = np.concatenate([old, fresh])
        model = SingleTaskGP(
            tx, ty.unsqueeze(-1), likelihood=_likelihood(self.kind, new.groups, len(ty)),
            covar_module=covar, mean_module=mean, outcome_transform=None,
        ).to(DTYPE)
        self._load_state(model, self.state_exact())
        model.eval()
        new.model = model
        return new

    def state_exact(self) -> list[float]:
        assert self.model is not None
        return [float(v) for p in self.model.parameters() for v in p.detach().flatten()]

    # -- prediction -----------------------------------------------------------------------
    def _posterior_cache(self) -> _ExactPosterior:
        """Cholesky factor and weights of the training data, computed once per fitted model.

        The acquisition asks tens of thousands of small questions per proposal; gpytorch's
        prediction machinery re-evaluates lazy kernel tensors on each (about 10 ms a call), while
        the closed form below, from one factorization, answers in well under a millisecond.
        """
        assert self.model is not None
        if self._cache is None:
            self._cache = _ExactPosterior.of(self.model)
        return self._cache

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function (no observation noise)."""
        post = self._posterior_cache()
        with torch.no_grad():
            mean, var, _ = post.moments(torch.as_tensor(np.asarray(x, dtype=float), dtype=DTYPE))
        return (mean.numpy() * self._y_std + self._y_mean,
                var.clamp_min(1e-12).numpy() * self._y_std**2)

    def predict_target(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance at the target fidelity of mixtures ``weights`` (n, k)."""
        return self.predict(target_inputs(weights))

    def predict_pairs(self, xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, ...]:
        """Joint posterior of row pairs (xa[i], xb[i]): means, variances and covariance."""
        post = self._posterior_cache()
        with torch.no_grad():
            ta = torch.as_tensor(np.asarray(xa, dtype=float), dtype=DTYPE)
            tb = torch.as_tensor(np.asarray(xb, dtype=float), dtype=DTYPE)
            mean_a, var_a, va = post.moments(ta)
            mean_b, var_b, vb = post.moments(tb)
            cov = post.covar.forward(ta, tb, diag=True) - (va * vb).sum(0)
        s2 = self._y_std**2
        return (
            mean_a.numpy() * self._y_std + self._y_mean,
            mean_b.numpy() * self._y_std + self._y_mean,
            np.maximum(var_a.numpy() * s2, 1e-12),
            np.maximum(var_b.numpy() * s2, 1e-12),
            cov.numpy() * s2,
        )

    def leave_runs_out(
        self, groups: np.ndarray, rows: np.ndarray, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and variance (noise included, original units) of each training row in
        ``rows`` from the other training rows (only those in ``among``, if given: indices), less
        those of its own group (its run's other reports).

        Closed form from one factorization (hyperparameters fixed): for the block S of a run,
        ``y_S | rest ~ N(y_S - A^-1 alpha_S, A^-1)`` with ``A = (K^-1)_SS`` and ``alpha = K^-1 (y - m)``.
        ``groups`` labels the training rows in the order they were fitted.
        """
        assert self.model is not None
        post = self._posterior_cache()
        groups = np.asarray(groups)
        y = self.model.train_targets.numpy()
        if among is None:
            keep = np.arange(len(y))
            with torch.no_grad():
                kinv = torch.cholesky_inverse(post.chol).numpy()
            alpha = post.alpha.numpy()
        else:
            keep = np.asarray(among, dtype=int)
            x = post.train_x[keep]
            with torch.no_grad():
                idx = torch.as_tensor(keep)
                noise = training_noise(self.model.likelihood, len(y))[idx][:, idx]
                k = post.covar.forward(x, x) + noise
                chol = _jittered_cholesky(k)
                kinv = torch.cholesky_inverse(chol).numpy()
                resid = y[keep] - post.mean(x).numpy()
            alpha = kinv @ resid
        position = {int(r): i for i, r in enumerate(keep)}
        sub_groups = groups[keep]
        means, variances = [], []
        for r in np.asarray(rows, dtype=int):
            i = position[int(r)]
            block = np.flatnonzero(sub_groups == sub_groups[i])
            cov = np.linalg.inv(kinv[np.ix_(block, block)])
            at = int(np.flatnonzero(block == i)[0])
            means.append(y[r] - (cov @ alpha[block])[at])
            variances.append(max(cov[at, at], 1e-12))
        return (np.asarray(means) * self._y_std + self._y_mean, np.asarray(variances) * self._y_std**2)

    def training_values(self) -> np.ndarray:
        """The values the GP was fitted on, in original units (rows that were not finite dropped)."""
        assert self.model is not None
        return self.model.train_targets.detach().numpy() * self._y_std + self._y_mean

    def mixture_prior_std(self) -> float:
        """Prior std of the mixture-dependent part of the value at the target (original units):
        the scale against which "this fidelity is already known here" is judged."""
        assert self.model is not None
        kern = self.model.covar_module
        if isinstance(kern, SumKernel):
            core = kern.a
            var = float((core.coregionalization[0, 0] + core.residual_scale).detach())
        else:  # product-rbf and mixture: a ScaleKernel
            var = float(kern.outputscale.detach())
        return math.sqrt(max(var, 1e-18)) * self._y_std

    @property
    def noise_variance(self) -> float:
        """The noise of one new run's report about its mixture's expected value: per-report
        noise plus the run's offset (original units)."""
        return self.report_noise_variance + self.run_variance

    @property
    def y_scale(self) -> float:
        """The std the outputs were standardized by (original units per model unit)."""
        return self._y_std

    @property
    def report_noise_variance(self) -> float:
        assert self.model is not None
        return float(self.model.likelihood.noise.detach().item()) * self._y_std**2

    @property
    def run_variance(self) -> float:
        """The variance of one run's offset, shared by all its reports (0 without a run effect)."""
        assert self.model is not None
        lik = self.model.likelihood
        if not isinstance(lik, RunEffectLikelihood):
            return 0.0
        return float(lik.run_variance.detach()) * self._y_std**2

    def fidelity_correlation(self, z_a: np.ndarray, z_b: np.ndarray) -> float:
        """Prior correlation of the mixture effect between two fidelities (for diagnostics)."""
        assert self.model is not None
        kern = self.model.covar_module
        if not isinstance(kern, SumKernel):
            return float("nan")
        core = kern.a
        b = core.coregionalization.detach().numpy()
        fa = np.concatenate([[1.0], z_a])
        fb = np.concatenate([[1.0], z_b])
        return float(fa @ b @ fb / math.sqrt((fa @ b @ fa) * (fb @ b @ fb)))


@dataclass(frozen=True)
class _ExactPosterior:
    """The exact GP posterior in closed form from one Cholesky factorization (standardized units).

    For test rows a, b: ``mean(a) = m(a) + k(a, X) K^-1 (y - m(X))`` and
    ``cov(a, b) = k(a, b) - k(a, X) K^-1 k(X, b)``, with ``K = k(X, X) + noise I``.
    """

    train_x: torch.Tensor
    chol: torch.Tensor  # lower Cholesky factor of K
    alpha: torch.Tensor  # K^-1 (y - m(X))
    covar: Kernel
    mean: Mean

    @classmethod
    def of(cls, model: SingleTaskGP) -> _ExactPosterior:
        x = model.train_inputs[0]
        y = model.train_targets
        with torch.no_grad():
            k = model.covar_module.forward(x, x) + training_noise(model.likelihood, len(x))
            chol = _jittered_cholesky(k)
            resid = (y - model.mean_module(x)).unsqueeze(-1)
            alpha = torch.cholesky_solve(resid, chol).squeeze(-1)
        return cls(x, chol, alpha, model.covar_module, model.mean_module)

    def moments(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior mean and variance at rows ``a``, and ``L^-1 k(X, a)``: the covariance of
        rows a and b is ``k(a, b) - (v_a * v_b).sum(0)``."""
        ka = self.covar.forward(a, self.train_x)
        v = torch.linalg.solve_triangular(self.chol, ka.T, upper=False)
        mean = self.mean(a) + ka @ self.alpha
        var = self.covar.forward(a, a, diag=True) - (v * v).sum(0)
        return mean, var, v


def _jittered_cholesky(k: torch.Tensor) -> torch.Tensor:
    """Cholesky of a covariance matrix, adding jitter (as gpytorch does) if it is not quite PD."""
    jitter = 0.0
    scale = float(k.diagonal().abs().mean()) or 1.0
    for _ in range(6):
        chol, info = torch.linalg.cholesky_ex(k + jitter * scale * torch.eye(len(k), dtype=k.dtype))
        if int(info) == 0:
            return chol
        jitter = 1e-8 if jitter == 0.0 else jitter * 10.0
    raise SurrogateFitError("the GP's covariance matrix is not positive definite, even with jitter")


def thin_observations(
    n: int, max_points: int, priority: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Indices of at most ``max_points`` observations: highest priority first, then random."""
    if n <= max_points:
        return np.arange(n)
    order = np.lexsort((rng.random(n), -priority))
    return np.sort(order[:max_points])
