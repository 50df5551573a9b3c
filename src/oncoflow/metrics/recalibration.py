"""Recalibration of a fold model's scores into risks, and calibration statistics of risks.

Why: ``weighted_loss`` and ``balanced_sampler`` train as if the classes were balanced, which
multiplies the predicted odds by about n_neg / n_pos; a CNN that over-fits is also over-confident.
Its ``probability`` ranks patients (AUC) but is not a risk. Each fold's model is therefore
**logistically recalibrated** (Cox 1958) on that fold's inner-validation patients, which the model
never trained on: ``risk = expit(a + b * logit(probability))``. Logistic recalibration rather than a
prior-shift correction of the logit (``logit p - log(n_neg / n_pos)``): the prior shift fixes only
the odds inflation (the intercept) and needs the training weights, while the slope b also corrects
over- or under-confidence; both come out of one fit on patients the model never saw.

The inner-validation sets are small (about 20 patients in a 110-patient study), so the fit is
stabilised by a weak ridge penalty pulling b towards 1 (no change of spread), :data:`SLOPE_PRIOR`,
which keeps it finite when the validation patients are separable; the intercept is free. A fold
whose validation patients are missing or of a single class keeps ``risk = probability`` with a note.
The map is monotone increasing (b > 0 is enforced) so AUC is unchanged; AUC uses ``probability``.

Calibration of pooled risks (per model and cohort): calibration-in-the-large (intercept of
``y ~ 1 + offset(logit risk)``) and calibration slope (``y ~ 1 + logit risk``), each with a Wald
CI; the Brier score with a stratified bootstrap percentile CI.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

#: Ridge penalty on (b - 1) of the recalibration fit (a prior of about one patient's information).
SLOPE_PRIOR = 1.0
#: Smallest slope the recalibration may take (keeps the map increasing, so AUC is unchanged).
MIN_SLOPE = 0.05
EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _logistic_fit(x: np.ndarray, y: np.ndarray, *, offset: np.ndarray | None = None,
                  penalty: np.ndarray | None = None, centre: np.ndarray | None = None,
                  iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Newton-Raphson for y ~ Bernoulli(expit(offset + x @ beta)) with an optional ridge penalty
    0.5 * sum(penalty * (beta - centre)^2). Returns (beta, covariance = inverse Hessian)."""
    n, k = x.shape
    off = np.zeros(n) if offset is None else offset
    pen = np.zeros(k) if penalty is None else penalty
    ctr = np.zeros(k) if centre is None else centre
    beta = ctr.copy()
    hess = np.eye(k)
    for _ in range(iterations):
        mu = expit(off + x @ beta)
        w = np.clip(mu * (1 - mu), 1e-10, None)
        grad = x.T @ (y - mu) - pen * (beta - ctr)
        hess = (x * w[:, None]).T @ x + np.diag(pen)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        step = np.clip(step, -5, 5)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    return beta, cov


def fit_recalibration(y: np.ndarray, probability: np.ndarray) -> tuple[float, float, str]:
    """(a, b, note): ``risk = expit(a + b * logit(probability))`` fitted on these (inner-validation)
    patients; identity (0, 1) with a note when they cannot support a fit."""
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return 0.0, 1.0, "no inner-validation patients: risk = probability (not recalibrated)"
    if np.unique(y).size < 2:
        return 0.0, 1.0, "single-class inner-validation patients: risk = probability (not recalibrated)"
    x = np.column_stack([np.ones(y.size), logit(probability)])
    beta, _ = _logistic_fit(x, y, penalty=np.array([0.0, SLOPE_PRIOR]), centre=np.array([0.0, 1.0]))
    a, b = float(beta[0]), float(beta[1])
    note = ""
    if not np.isfinite(a) or not np.isfinite(b):
        return 0.0, 1.0, "recalibration did not converge: risk = probability"
    if b < MIN_SLOPE:
        note = f"recalibration slope {b:.3f} raised to {MIN_SLOPE} (validation scores barely rank)"
        b = MIN_SLOPE
        a = float(_logistic_fit(np.ones((y.size, 1)), y, offset=b * x[:, 1])[0][0])
    return a, b, note


def apply_recalibration(probability: np.ndarray, a: float, b: float) -> np.ndarray:
    return expit(a + b * logit(probability))


def _wald(est: float, se: float, level: float) -> tuple[float, float]:
    z = float(norm.ppf(0.5 + level / 2))
    return (float(est - z * se), float(est + z * se)) if np.isfinite(se) else (np.nan, np.nan)


def calibration_statistics(y: np.ndarray, risk: np.ndarray, *, level: float = 0.95, n_boot: int = 2000,
                           seed: int | None = 0) -> dict[str, Any]:
    """Calibration intercept (in the large) and slope with Wald CIs, Brier with a bootstrap CI."""
    y = np.asarray(y, dtype=float)
    risk = np.asarray(risk, dtype=float)
    out: dict[str, Any] = {k: np.nan for k in CALIBRATION_KEYS}
    if y.size == 0:
        return out
    brier = (risk - y) ** 2
    out["brier"] = float(brier.mean())
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    boots = np.empty(n_boot)
    for i in range(n_boot):  # stratified: the prevalence stays that of the cohort
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)]) if pos.size and neg.size \
            else rng.choice(y.size, y.size)
        boots[i] = brier[idx].mean()
    alpha = (1 - level) / 2
    out["brier_ci_low"], out["brier_ci_high"] = (float(v) for v in np.quantile(boots, [alpha, 1 - alpha]))
    if np.unique(y).size < 2:
        return out
    lr = logit(risk)
    beta, cov = _logistic_fit(np.ones((y.size, 1)), y, offset=lr)
    out["cal_intercept"] = float(beta[0])
    out["cal_intercept_ci_low"], out["cal_intercept_ci_high"] = _wald(beta[0], float(np.sqrt(cov[0, 0])), level)
    beta, cov = _logistic_fit(np.column_stack([np.ones(y.size), lr]), y)
    out["cal_slope"] = float(beta[1])
    out["cal_slope_ci_low"], out["cal_slope_ci_high"] = _wald(beta[1], float(np.sqrt(cov[1, 1])), level)
    return out


CALIBRATION_KEYS = ("cal_intercept", "cal_intercept_ci_low", "cal_intercept_ci_high", "cal_slope",
                    "cal_slope_ci_low", "cal_slope_ci_high", "brier", "brier_ci_low", "brier_ci_high")
