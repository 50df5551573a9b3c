"""ComBat (Johnson, Li & Rabinovic, Biostatistics 2007), fitted on training rows, applied to any rows.

Per feature ``g`` and site ``i``: ``x = alpha_g + gamma_ig + sqrt(delta_ig) * e``. The fit
standardises the training rows with the grand mean ``alpha_g`` (site means weighted by site size)
and the pooled within-site variance, then shrinks each site's location ``gamma_ig`` and scale
``delta_ig`` towards that site's average over features (parametric empirical Bayes: normal prior
for gamma, inverse-gamma for delta, method-of-moments hyper-parameters, iterated to convergence).
Applying removes ``gamma`` and ``delta`` and returns the features on the training scale.

Written here rather than taken from neuroCombat or neuroHarmonize: neuroCombat has no separate
apply step (it harmonises the rows it is given, all together), and neuroHarmonize's
``harmonizationApply`` cannot harmonise a site absent from ``harmonizationLearn``'s rows, which is
every test fold of leave-one-site-out. No covariate is modelled: the outcome must never be one,
and the covariates' effects would need the same care.

A site the fit never saw (``unseen``): ``own`` estimates its location and scale from its own rows
with the same empirical-Bayes step (feature values only, no label; the training sites' parameters
and harmonised values stay what the fit made them), ``refuse`` raises an error naming the site.
A site with fewer than ``min_site_patients`` rows (training rows for a training site, the rows
given to ``apply`` for an unseen one) has too few for a scale: its rows are left as they are, and
a training site of that size is not used for the fit (it is said in the parameters table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

UNSEEN = ("own", "refuse")
_TOL = 1e-4
_MAX_ITER = 1000


class HarmonisationError(ValueError):
    pass


@dataclass(frozen=True)
class ComBat:
    features: list[str]      # the features adjusted (finite and non-constant in the training rows)
    sites: list[str]         # the training sites fitted
    grand_mean: np.ndarray   # (features,)
    pooled_sd: np.ndarray    # (features,)
    gamma: np.ndarray        # (sites, features): empirical-Bayes location, standardised units
    delta: np.ndarray        # (sites, features): empirical-Bayes scale (variance), standardised units
    small_sites: list[str]   # training sites left as they are (too few rows)
    unseen: str
    min_site_patients: int

    def apply(self, x: pd.DataFrame, sites: pd.Series) -> pd.DataFrame:
        """``x`` harmonised: rows of a fitted site with its parameters; of a small training site,
        unchanged; of an unseen site, per ``unseen`` (``own`` with fewer than ``min_site_patients``
        of its rows here: unchanged). Features not fitted pass through."""
        sites = sites.loc[x.index].astype(str)
        out = x.astype(float).copy()
        z = (out[self.features].to_numpy() - self.grand_mean) / self.pooled_sd
        adjusted = z.copy()
        for name in sites.unique():
            rows = (sites == name).to_numpy()
            if name in self.sites:
                k = self.sites.index(name)
                gamma, delta = self.gamma[k], self.delta[k]
            elif name in self.small_sites:
                continue
            elif self.unseen == "refuse":
                raise HarmonisationError(
                    f"harmonisation: site {name!r} ({int(rows.sum())} patient(s), e.g. {sites.index[rows][0]!r}) "
                    f"was not among the training sites ({', '.join(self.sites)}); set harmonisation.unseen_site "
                    "to 'own' to harmonise it with its own feature distribution, or train on that site")
            elif rows.sum() < self.min_site_patients:
                continue  # as a small training site: too few rows for a scale, left as they are
            else:
                gammas, deltas = _empirical_bayes([z[rows]])
                gamma, delta = gammas[0], deltas[0]
            adjusted[rows] = (z[rows] - gamma) / np.sqrt(delta)
        out[self.features] = adjusted * self.pooled_sd + self.grand_mean
        return out

    def table(self) -> pd.DataFrame:
        """The fitted parameters, one row per (site, feature), for the fold's audit file."""
        rows = [{"site": s, "feature": f, "gamma": float(self.gamma[k, j] * self.pooled_sd[j]),
                 "delta": float(self.delta[k, j]), "grand_mean": float(self.grand_mean[j]),
                 "pooled_sd": float(self.pooled_sd[j])}
                for k, s in enumerate(self.sites) for j, f in enumerate(self.features)]
        rows += [{"site": s, "feature": "(left as is: too few training patients)"} for s in self.small_sites]
        return pd.DataFrame(rows)


def fit_combat(x: pd.DataFrame, sites: pd.Series, *, min_site_patients: int, unseen: str) -> ComBat:
    """ComBat fitted on the rows of ``x`` (training patients only) with their ``sites``."""
    if unseen not in UNSEEN:
        raise HarmonisationError(f"harmonisation.unseen_site must be one of {', '.join(UNSEEN)}, not {unseen!r}")
    sites = sites.loc[x.index].astype(str)
    counts = sites.value_counts()
    small = sorted(counts.index[counts < min_site_patients])
    fitted = sorted(counts.index[counts >= min_site_patients])
    if len(fitted) < 2:
        raise HarmonisationError(
            f"harmonisation: the training patients hold {len(fitted)} site(s) with at least {min_site_patients} "
            f"patients ({', '.join(f'{s}: {n}' for s, n in counts.sort_index().items())}); ComBat needs two. "
            "Set harmonisation.method to none, or lower harmonisation.min_site_patients")
    keep = sites.isin(fitted).to_numpy()
    values = x.astype(float).to_numpy()[keep]
    site_of = sites.to_numpy()[keep]
    finite = np.isfinite(values).all(axis=0)
    groups = [values[site_of == s] for s in fitted]
    weights = np.array([len(g) for g in groups], dtype=float)
    means = np.array([g.mean(axis=0) for g in groups])
    grand = weights @ means / weights.sum()
    var = sum(((g - m) ** 2).sum(axis=0) for g, m in zip(groups, means)) / weights.sum()
    features = finite & (var > 1e-12 * np.maximum(1.0, grand ** 2))
    names = [c for c, f in zip(x.columns, features) if f]
    if len(names) < 2:
        raise HarmonisationError(f"harmonisation: {len(names)} feature(s) vary in the training patients; "
                                 "ComBat's priors need two or more. Set harmonisation.method to none")
    grand, sd = grand[features], np.sqrt(var[features])
    gamma, delta = _empirical_bayes([(g[:, features] - grand) / sd for g in groups])
    return ComBat(names, fitted, grand, sd, gamma, delta, small, unseen, min_site_patients)


def _empirical_bayes(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(gamma*, delta*) per group of standardised rows (Johnson 2007, parametric priors)."""
    gammas, deltas = [], []
    for z in groups:  # NaN-aware: an applied (unseen-site) row may miss a feature
        n = np.isfinite(z).sum(axis=0)
        g_hat, d_hat = np.nanmean(z, axis=0), np.nanvar(z, axis=0, ddof=1)
        g_bar, t2 = np.nanmean(g_hat), np.nanvar(g_hat, ddof=1)
        m, s2 = np.nanmean(d_hat), np.nanvar(d_hat, ddof=1)
        a, b = (2 * s2 + m ** 2) / s2, (m * s2 + m ** 3) / s2
        g_old, d_old = g_hat, d_hat
        for _ in range(_MAX_ITER):
            g_new = (n * t2 * g_hat + d_old * g_bar) / (n * t2 + d_old)
            d_new = (0.5 * np.nansum((z - g_new) ** 2, axis=0) + b) / (n / 2.0 + a - 1.0)
            # the stopping rule of sva's it.sol and neuroCombat (relative to the signed old value)
            with np.errstate(divide="ignore", invalid="ignore"):  # a location of exactly 0: iterate on
                change = max(np.nanmax(np.abs(g_new - g_old) / g_old), np.nanmax(np.abs(d_new - d_old) / d_old))
            g_old, d_old = g_new, d_new
            if change < _TOL:
                break
        gammas.append(g_old)
        deltas.append(d_old)
    return np.array(gammas), np.array(deltas)
