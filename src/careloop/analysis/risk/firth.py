"""Firth's bias-reduced logistic regression.

Firth D. *Bias reduction of maximum likelihood estimates.* Biometrika
1993;80:27–38; Heinze G, Schemper M. *A solution to the problem of separation
in logistic regression.* Stat Med 2002;21:2409–19. The log-likelihood is
penalised by half the log-determinant of the Fisher information (Jeffreys
prior), which keeps estimates finite under separation and removes the
first-order small-sample bias — the method of choice when events are few.

Written here (a short Newton iteration) because neither scikit-learn nor
statsmodels offers it and the maintained Python packages for it are not
among careloop's dependencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from careloop.core.errors import InputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FirthFit:
    """Coefficients of a Firth logistic regression."""

    intercept: float
    """Intercept (log-odds when every predictor is 0)."""
    coefficients: tuple[float, ...]
    """Log-odds ratio per unit of each predictor, in column order."""
    standard_errors: tuple[float, ...]
    """Wald standard errors, intercept first, from the penalised information."""
    penalised_loglik: float
    """Log-likelihood plus ½ log det of the Fisher information at the estimate."""
    iterations: int
    """Newton iterations used."""
    converged: bool
    """Whether the largest step fell below the tolerance."""


def _penalised_loglik(design: FloatArray, y: FloatArray, beta: FloatArray) -> float:
    eta = design @ beta
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    prob = 1 / (1 + np.exp(-eta))
    info = design.T @ (design * (prob * (1 - prob))[:, None])
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        return -math.inf
    return loglik + 0.5 * float(logdet)


def firth_logistic(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FirthFit:
    """Fit Firth's penalised-likelihood logistic regression by Newton–Raphson.

    Args:
        x: Predictor matrix, one row per patient (no intercept column).
        y: Outcome, 0/1.
        max_iter: Largest number of Newton iterations.
        tol: Convergence tolerance on the largest coefficient change.

    Returns:
        The fitted coefficients, standard errors and penalised log-likelihood.

    Raises:
        InputError: The outcome is not 0/1 or the predictors are collinear.
    """
    xm = np.asarray(x, dtype=float)
    if xm.ndim == 1:
        xm = xm[:, None]
    yv = np.asarray(y, dtype=float)
    if not np.isin(yv, (0.0, 1.0)).all():
        raise InputError("The outcome for Firth logistic regression must be coded 0/1.")
    design = np.column_stack([np.ones(len(yv)), xm])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise InputError("The predictors are collinear (one is a combination of others); drop one.")
    beta = np.zeros(design.shape[1])
    current = _penalised_loglik(design, yv, beta)
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        prob = 1 / (1 + np.exp(-(design @ beta)))
        weight = prob * (1 - prob)
        info = design.T @ (design * weight[:, None])
        info_inv = np.linalg.inv(info)
        # leverages h_i of W^½ X (XᵀWX)⁻¹ XᵀW^½
        hat = np.einsum("ij,jk,ik->i", design, info_inv, design) * weight
        score = design.T @ (yv - prob + hat * (0.5 - prob))
        step = info_inv @ score
        # step-halving keeps the penalised likelihood rising (as logistf does)
        for _ in range(30):
            candidate = _penalised_loglik(design, yv, beta + step)
            if candidate >= current - 1e-12:
                break
            step = step / 2
        beta = beta + step
        current = _penalised_loglik(design, yv, beta)
        if float(np.max(np.abs(step))) < tol:
            converged = True
            break
    prob = 1 / (1 + np.exp(-(design @ beta)))
    info = design.T @ (design * (prob * (1 - prob))[:, None])
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    return FirthFit(
        intercept=float(beta[0]),
        coefficients=tuple(float(b) for b in beta[1:]),
        standard_errors=tuple(float(s) for s in se),
        penalised_loglik=current,
        iterations=iteration,
        converged=converged,
    )
