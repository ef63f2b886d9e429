"""Every evaluation domain's loss, jointly, from the runs' per-domain reports.

An intrinsic coregionalization model on top of the study's fitted GP: each domain's
(standardized) loss is a GP with the *same* kernel over (mixture, scale, step), its own mean
(constant plus a linear trend in the fidelity coordinates, estimated by generalized least
squares) and a learned domain covariance ``B``:

    cov(L_d(x), L_e(x')) = B[d, e] * sigma_d * sigma_e * k(x, x').

With the reports of all domains at the same inputs and noise proportional to ``B`` (one noisy run
moves all its domains together), the posterior mean of each domain is that of its own GP, and the
joint posterior covariance is ``B * sigma sigma^T`` times one shared posterior variance: one
Cholesky factorization serves every domain, so the cost does not grow with the domain count
beyond a few matrix-vector products.  ``B`` is the maximum-likelihood estimate given the kernel,
``R^T K^-1 R / (n - p)`` over the GLS residuals ``R``.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from optuna_adso.surrogate import DTYPE, MultiFidelitySurrogate, SurrogateFitError, _jittered_cholesky

MIN_ROWS = 4


@dataclass
class DomainModel:
    """The joint per-domain posterior; everything in each domain's original units."""

    names: list[str]
    train_x: torch.Tensor
    chol: torch.Tensor  # Cholesky factor of K = k(X, X) + noise I (the shared kernel)
    kernel: object
    basis_cols: int
    beta: np.ndarray  # (p, D) GLS mean coefficients, standardized units
    alpha: np.ndarray  # (n, D) K^-1 (y - H beta)
    domain_cov: np.ndarray  # B (D, D), standardized units
    y_mean: np.ndarray  # (D,)
    y_std: np.ndarray  # (D,)
    noise: float  # the shared kernel's noise (standardized units of the kernel)
    n_weights: int

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, surrogate: MultiFidelitySurrogate, x: np.ndarray, losses: np.ndarray, names: Sequence[str],
        *, refit_kernel: bool = False,
    ) -> DomainModel:
        """Condition on ``losses`` (n, D) at inputs ``x`` (n, k + 2) with ``surrogate``'s kernel.

        ``refit_kernel``: re-optimize the kernel's hyperparameters for every domain at once
        (:func:`fit_shared_kernel`), starting from ``surrogate``'s.  The mean loss is smoother in
        the mixture than single domains are, and its length scales make per-domain predictions
        overconfident far from the runs; a second or two, so for answers, not for every proposal.
        """
        if surrogate.model is None:
            raise SurrogateFitError("the study's GP is not fitted")
        x = np.asarray(x, dtype=float)
        y = np.asarray(losses, dtype=float)
        if y.ndim != 2 or y.shape[1] != len(names) or len(y) != len(x):
            raise ValueError(f"losses must be (n, {len(names)}) beside x (n, k + 2), got {y.shape} and {x.shape}")
        keep = np.all(np.isfinite(y), axis=1) & np.all(np.isfinite(x), axis=1)
        x, y = x[keep], y[keep]
        if len(y) < MIN_ROWS:
            raise SurrogateFitError(f"fewer than {MIN_ROWS} reports with every domain's value")
        n_weights = surrogate.n_weights
        y_mean = y.mean(axis=0)
        y_std = y.std(axis=0)
        y_std = np.where(y_std > 1e-12, y_std, 1.0)
        ys = (y - y_mean) / y_std
        kernel = surrogate.model.covar_module
        tx = torch.as_tensor(x, dtype=DTYPE)
        # per-report noise and the run effect, as independent noise: rows here are not labelled
        # with their runs, and this errs wide, not narrow
        noise = max((surrogate.report_noise_variance + surrogate.run_variance) / surrogate.y_scale**2, 1e-9)
        if refit_kernel:
            kernel, noise = fit_shared_kernel(kernel, noise, tx, torch.as_tensor(ys, dtype=DTYPE),
                                              torch.as_tensor(_basis(x, n_weights, surrogate.kind), dtype=DTYPE))
        with torch.no_grad():
            k = kernel.forward(tx, tx) + noise * torch.eye(len(x), dtype=DTYPE)
            chol = _jittered_cholesky(k)
            h = torch.as_tensor(_basis(x, n_weights, surrogate.kind), dtype=DTYPE)
            kinv_h = torch.cholesky_solve(h, chol)
            kinv_y = torch.cholesky_solve(torch.as_tensor(ys, dtype=DTYPE), chol)
            gram = h.T @ kinv_h
            beta = torch.linalg.solve(gram + 1e-9 * torch.eye(len(gram), dtype=DTYPE), h.T @ kinv_y)
            resid = torch.as_tensor(ys, dtype=DTYPE) - h @ beta
            alpha = torch.cholesky_solve(resid, chol)
        dof = max(len(x) - h.shape[1], 1)
        b = (resid.T @ alpha).numpy() / dof
        b = 0.5 * (b + b.T) + 1e-10 * np.eye(len(names))
        return cls(list(names), tx, chol, kernel, h.shape[1], beta.numpy(), alpha.numpy(), b, y_mean, y_std,
                   noise, n_weights)

    # -- prediction ---------------------------------------------------------------------------
    def _moments(self, x: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        tx = torch.as_tensor(np.asarray(x, dtype=float), dtype=DTYPE)
        with torch.no_grad():
            kx = self.kernel.forward(tx, self.train_x)
            v = torch.linalg.solve_triangular(self.chol, kx.T, upper=False)
            prior = self.kernel.forward(tx, tx, diag=True)
        h = _basis_rows(np.asarray(x, dtype=float), self.n_weights, self.basis_cols)
        mean_s = h @ self.beta + kx.numpy() @ self.alpha
        return mean_s * self.y_std + self.y_mean, prior - (v * v).sum(0), v

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-domain posterior means (n, D) and covariances (n, D, D) of the expected loss."""
        mean, var, _ = self._moments(x)
        scale = self.domain_cov * np.outer(self.y_std, self.y_std)
        return mean, np.clip(var.numpy(), 1e-12, None)[:, None, None] * scale[None]

    def predict_differences(self, xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint posterior of ``L(xa[i]) - L(xb[i])`` per domain: means (n, D), covariances (n, D, D)."""
        ma, va, pa = self._moments(xa)
        mb, vb, pb = self._moments(xb)
        ta = torch.as_tensor(np.asarray(xa, dtype=float), dtype=DTYPE)
        tb = torch.as_tensor(np.asarray(xb, dtype=float), dtype=DTYPE)
        with torch.no_grad():
            cross = self.kernel.forward(ta, tb, diag=True) - (pa * pb).sum(0)
        var = np.clip((va + vb - 2.0 * cross).numpy(), 1e-12, None)
        scale = self.domain_cov * np.outer(self.y_std, self.y_std)
        return ma - mb, var[:, None, None] * scale[None]

    def summaries(self, x: np.ndarray) -> list[dict[str, tuple[float, float]]]:
        """Each row's ``{domain: (mean, std)}``."""
        mean, cov = self.predict(x)
        return [
            {d: (float(mean[i, j]), math.sqrt(float(cov[i, j, j]))) for j, d in enumerate(self.names)}
            for i in range(len(mean))
        ]

    @property
    def scale(self) -> np.ndarray:
        """``B * sigma sigma^T``: the domain covariance a unit of shared posterior variance carries."""
        return self.domain_cov * np.outer(self.y_std, self.y_std)

    def means(self, x: np.ndarray) -> np.ndarray:
        """Per-domain posterior means (n, D)."""
        return self._moments(x)[0]

    def cross(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """The shared posterior covariance factor of row pairs (xa[i], xb[i]) (n,): the domain
        covariance of ``L(xa[i])`` and ``L(xb[i])`` is ``cross[i] * scale``."""
        _, _, pa = self._moments(xa)
        _, _, pb = self._moments(xb)
        ta = torch.as_tensor(np.asarray(xa, dtype=float), dtype=DTYPE)
        tb = torch.as_tensor(np.asarray(xb, dtype=float), dtype=DTYPE)
        with torch.no_grad():
            return (self.kernel.forward(ta, tb, diag=True) - (pa * pb).sum(0)).numpy()

    def moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-domain posterior means (n, D) and the shared posterior variance factor (n,)."""
        mean, var, _ = self._moments(x)
        return mean, var.numpy()

    def difference_to(self, x: np.ndarray, x_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means (n, D) and shared variance factors (n,) of ``L(x[i]) - L(x_ref)``, one reference
        row for all: one solve against the training set for ``x`` and one for the reference."""
        mx, vx, px = self._moments(x)
        mr, vr, pr = self._moments(np.atleast_2d(x_ref)[:1])
        tx = torch.as_tensor(np.asarray(x, dtype=float), dtype=DTYPE)
        tr = torch.as_tensor(np.atleast_2d(x_ref)[:1], dtype=DTYPE)
        with torch.no_grad():
            cross = self.kernel.forward(tx, tr)[:, 0] - (px * pr).sum(0)
        return mx - mr, (vx + vr - 2.0 * cross).numpy()

    def correlation(self) -> np.ndarray:
        """The learned correlation between domains (D, D)."""
        d = np.sqrt(np.diag(self.domain_cov))
        return self.domain_cov / np.outer(d, d)


NOISE_PRIOR_LOC, NOISE_PRIOR_SCALE = math.log(1e-3), 2.0  # the study GP's noise prior (standardized units)


def _neg_profiled_log_likelihood(kernel, noise: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                                 h: torch.Tensor) -> torch.Tensor:
    """``n/2 log|B| + D/2 log|K|`` with the GLS means and ``B`` profiled out (ICM, shared kernel)."""
    n, d = y.shape
    k = kernel.forward(x, x) + noise * torch.eye(n, dtype=DTYPE)
    chol = torch.linalg.cholesky(k + 1e-8 * torch.eye(n, dtype=DTYPE))
    kinv_h = torch.cholesky_solve(h, chol)
    beta = torch.linalg.solve(h.T @ kinv_h + 1e-9 * torch.eye(h.shape[1], dtype=DTYPE), kinv_h.T @ y)
    resid = y - h @ beta
    b = resid.T @ torch.cholesky_solve(resid, chol) / n
    logdet_b = torch.linalg.slogdet(b + 1e-9 * torch.eye(d, dtype=DTYPE))[1]
    return 0.5 * n * logdet_b + d * torch.log(torch.diagonal(chol)).sum()


def fit_shared_kernel(kernel, noise: float, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor,
                      max_iter: int = 60) -> tuple[object, float]:
    """A copy of ``kernel`` (and a noise) re-fitted by MAP to every domain's standardized losses
    ``y`` (n, D) jointly; the original on any failure (never worse than no refit)."""
    if y.shape[0] <= y.shape[1] + h.shape[1]:
        return kernel, noise  # too few reports to estimate a full domain covariance
    kern = copy.deepcopy(kernel)
    raw_noise = torch.tensor(math.log(noise), dtype=DTYPE, requires_grad=True)
    params = [p for p in kern.parameters()] + [raw_noise]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        noise_t = raw_noise.exp().clamp_min(1e-6)
        loss = _neg_profiled_log_likelihood(kern, noise_t, x, y, h)
        for _, module, prior, closure, _ in kern.named_priors():
            loss = loss - prior.log_prob(closure(module)).sum()
        loss = loss + 0.5 * ((raw_noise - NOISE_PRIOR_LOC) / NOISE_PRIOR_SCALE) ** 2
        loss.backward()
        return loss

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = float(loss_fn().detach())
            opt.step(loss_fn)
            after = float(loss_fn().detach())
    except (RuntimeError, ValueError):  # a non-PD matrix along the way: keep what we had
        return kernel, noise
    if not (math.isfinite(after) and after <= before) or not all(torch.isfinite(p).all() for p in params):
        return kernel, noise
    for p in params:
        p.requires_grad_(False)
    return kern, float(raw_noise.detach().exp().clamp_min(1e-6))


def _basis(x: np.ndarray, n_weights: int, kind: str) -> np.ndarray:
    cols = 1 if kind == "mixture" else 3
    return _basis_rows(x, n_weights, cols)


def _basis_rows(x: np.ndarray, n_weights: int, cols: int) -> np.ndarray:
    """The mean's regressors: a constant, and the fidelity coordinates (a power law in scale and
    steps, as the study's own GP mean has it)."""
    ones = np.ones((len(x), 1))
    return ones if cols == 1 else np.column_stack([ones, x[:, n_weights : n_weights + 2]])

