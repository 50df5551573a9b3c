"""Turning a fold model's scores into risks, and calibration statistics of risks.

Why: ``weighted_loss`` and ``balanced_sampler`` train as if the classes were balanced, which
multiplies the predicted odds by about n_neg / n_pos of the training patients; a model that
over-fits is also over-confident. Its ``probability`` ranks patients (AUC) but is not a risk.

How, per model (:func:`oncoflow.metrics.choices.recalibration_methods`), chosen by whether the fold's inner-validation
patients selected the model:

- ``prior_shift``: a CNN's inner-validation patients chose its best epoch (and a stacking fusion's
  inputs), so a map fitted on them is fitted on patients that chose the model, which the
  evaluation does not do. The prior-shift correction (Saerens et al. 2002) fits nothing:
  ``logit risk = logit p - log(n_neg / n_pos)`` with the fold's training-patient counts, which
  undoes exactly the odds factor the weighted loss or the balanced sampler applied (the CNN weighs
  slices, so with a different number of slices per patient it is approximately exact). It cannot
  correct over-confidence (the slope stays that of the raw scores); nested selection can
  (``train.selection: nested``). On simulated studies with known risks (tests/test_recalibration.py:
  10 x 110 patients, a weighted-loss model trained over epochs, the epoch of best validation AUC
  kept): raw intercept -1.17, slope 0.32, Brier 0.215; prior shift -0.10 (95% CI covers 0), 0.32,
  0.176; logistic recalibration on the selecting patients -0.01, 0.57 (0.45-0.69), 0.170: better
  than the prior shift, but still over-confident and fitted on patients that chose the model.
  (Until issue #24 the logistic fit could oscillate, see :func:`_logistic_fit`, and these figures
  read -0.35, 0.13, 0.191, as did the LGG figures that made the prior shift the CNNs' method:
  Brier 0.274 with logistic against 0.186; the choice stands on the principle, not on them.)
  ``mean`` fusion of weighted CNNs gets the same correction (approximate for a mean).
- ``logistic``: models whose inner-validation patients selected nothing (``baseline``, radiomics,
  clinical and combined models, whose validation predictions are cross-fitted or only predicted)
  are logistically recalibrated (Cox 1958) on them: ``risk = expit(a + b * logit(probability))``,
  which corrects the intercept and the spread. The validation sets are small (about 20 patients
  in a 110-patient study), so a weak ridge penalty pulls b towards 1 (:data:`SLOPE_PRIOR`),
  keeping it finite when the patients are separable; the intercept is free. Measured on the LGG
  baseline: slope 0.78 -> 0.93, Brier 0.155 -> 0.154.
- ``logistic`` for CNNs too when ``train.selection`` is ``nested`` (oncoflow.train.loop): every
  non-test patient of the fold is then scored by an inner model that never trained on it (its inner
  out-of-fold score at the chosen epoch; the epoch itself is one number chosen on all of them), so
  the map (Platt scaling: a logistic fit of intercept and slope on the logit, rather than
  temperature scaling, because the weighted loss shifts the intercept as well as the spread) is
  fitted on about four times as many patients as the inner-validation set, none of whom chose
  the model that scored them. The map is applied to the fold model's test scores: with
  ``train.nested_model: ensemble`` the mean logit of those same inner models (the map is linear in
  the logit: the mean of their mapped logits), with ``refit`` a model refitted on all of them,
  which the map never saw.
  The ``mean`` fusion of such CNNs is recalibrated the same way.
- ``none``: the raw probability is the risk. Unweighted CNNs (``imbalance: none``) and the
  ``lr`` / ``svm`` stacking fusions (probability models fitted unweighted on the validation
  patients' scores, which selected the inputs' epochs).

A fold without training patients of both classes (prior shift) or whose validation patients are
missing or of a single class (logistic) keeps ``risk = probability`` with a note. Every map is
monotone increasing (b > 0 is enforced), so AUC is unchanged; AUC and thresholds use
``probability``.

Calibration of pooled risks (per model and cohort): calibration-in-the-large (intercept of
``y ~ 1 + offset(logit risk)``) and calibration slope (``y ~ 1 + logit risk``), each with a Wald
CI; the Brier score with a stratified bootstrap percentile CI.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from oncoflow.metrics.choices import METHODS, MIN_CALIBRATION_EVENTS

#: Ridge penalty on (b - 1) of the logistic recalibration fit (a prior of about one patient's information).
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
    0.5 * sum(penalty * (beta - centre)^2). Returns (beta, covariance = inverse Hessian).

    Each step is halved until the penalised log-likelihood does not fall (a plain Newton step from
    the identity map overshoots on widely spread scores that barely rank, then oscillates between two
    points for ever: measured on LGG CNN folds, slope 2.9 where the maximum-likelihood slope is -0.04)."""
    n, k = x.shape
    off = np.zeros(n) if offset is None else offset
    pen = np.zeros(k) if penalty is None else penalty
    ctr = np.zeros(k) if centre is None else centre

    def objective(b: np.ndarray) -> float:
        eta = off + x @ b
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(pen * (b - ctr) ** 2))

    beta = ctr.copy()
    hess = np.eye(k)
    current = objective(beta)
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
        for _ in range(30):  # step halving
            value = objective(beta + step)
            if value >= current:
                break
            step = step / 2
        else:
            break  # no ascent along the Newton direction: at the optimum to machine precision
        beta, current = beta + step, value
        if np.max(np.abs(step)) < 1e-9:
            break
    mu = expit(off + x @ beta)
    hess = (x * np.clip(mu * (1 - mu), 1e-10, None)[:, None]).T @ x + np.diag(pen)
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


def fit_prior_shift(y_train: np.ndarray) -> tuple[float, float, str]:
    """(a, 1, note): ``logit risk = logit p + a`` with ``a = -log(n_neg / n_pos)`` of the fold's
    training patients; identity with a note when they lack a class."""
    y = np.asarray(y_train, dtype=float)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.0, 1.0, "training patients of a single class (or none): risk = probability (no prior shift)"
    return float(-np.log(n_neg / n_pos)), 1.0, ""


def fit_fold(method: str, roles: np.ndarray, y: np.ndarray, probability: np.ndarray) -> tuple[float, float, str]:
    """(a, b, note) of one (model, fold) by ``method`` (:data:`METHODS`), from its predictions:
    ``prior_shift`` reads the training rows' labels, ``logistic`` the inner-validation rows'."""
    if method == "prior_shift":
        return fit_prior_shift(y[roles == "train"])
    if method == "logistic":
        val = roles == "val"
        return fit_recalibration(y[val], probability[val])
    if method == "none":
        return 0.0, 1.0, ""
    raise ValueError(f"unknown recalibration method {method!r}; choose from {', '.join(METHODS)}")


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


def calibration_assessable(y: np.ndarray) -> tuple[bool, str]:
    """(whether calibration can be assessed on these labels, the note when not)."""
    y = np.asarray(y)
    events = int(min((y == 1).sum(), (y == 0).sum()))
    if events >= MIN_CALIBRATION_EVENTS:
        return True, ""
    return False, (f"calibration intercept/slope not assessable: {events} patients of the smaller class "
                   f"(< {MIN_CALIBRATION_EVENTS} events; Collins et al. 2016)")


CALIBRATION_KEYS = ("cal_intercept", "cal_intercept_ci_low", "cal_intercept_ci_high", "cal_slope",
                    "cal_slope_ci_low", "cal_slope_ci_high", "brier", "brier_ci_low", "brier_ci_high")
