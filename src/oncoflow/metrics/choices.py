"""What evaluation will do, decided from the validated config alone: the curve tables, the
pre-specified comparison family, the evaluate section's checks, and how each model's scores become
risks (the reasons are in :mod:`oncoflow.metrics.recalibration`).

No computation and nothing heavier than the config: the study plan imports this at parse time,
i.e. in every Snakemake invocation and at every SLURM job's start (scipy.stats, which the metrics
themselves need, costs about 0.5 CPU s to import).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Mapping

from oncoflow.baseline import NAME as BASELINE
from oncoflow.config import ConfigError, ModelSpec, expand_models, fusion_inputs, radiomics_models

#: Table name -> file stem under figures/ (figures/<stem>.tsv).
CURVES = ("roc", "roc_band", "pr", "dca", "calibration")
#: The curve tables drawn as figures/<kind>.png and .pdf (oncoflow.report.figures; roc_band inside roc).
FIGURES = ("roc", "pr", "dca", "calibration")

#: How a model's scores become risks (see the module docstring).
METHODS = ("prior_shift", "logistic", "none")
#: The method of a model that :func:`recalibration_methods` did not name (a predictions table
#: evaluated outside the workflow): the one for models whose validation patients selected nothing.
DEFAULT_METHOD = "logistic"
#: CNN class-imbalance settings that multiply the odds by n_neg / n_pos (oncoflow.train.loop).
ODDS_INFLATING = ("weighted_loss", "balanced_sampler")

#: Fewer events (patients of the smaller class) than this: calibration intercept and slope are
#: "not assessable". The usual minimum for validating a risk model's calibration is 100 events
#: (Collins, Ogundimu & Altman 2016, Stat Med 35:214-226; the "100 events and 100 non-events"
#: rule of thumb, which Snell et al. 2021, J Clin Epidemiol 135:79-89, show can still be imprecise).
#: The estimates stay in metrics.tsv (with ``calibration_assessable`` false and a note); the
#: Markdown / LaTeX tables, the model card, the checklists and the calibration figure say
#: "not assessable" and nothing is called miscalibrated from them.
MIN_CALIBRATION_EVENTS = 100


class EvaluationError(ValueError):
    pass


def comparison_family(models: list[str], comparisons: list[list[str]], baseline: str = "baseline") -> list[tuple[str, str]]:
    """The pre-specified family: the configured pairs, then every model against ``baseline`` (when
    it is among ``models``), each pair once, in that order."""
    family: list[tuple[str, str]] = []
    for a, b in comparisons:
        if a == b:
            raise EvaluationError(f"evaluate.comparisons: [{a}, {b}] compares a model with itself")
        for m in (a, b):
            if m not in models:
                raise EvaluationError(f"evaluate.comparisons: no model {m!r} in this study (models: "
                                      f"{', '.join(models)}); fix the pair [{a}, {b}]")
        family.append((a, b))
    if baseline in models:
        family += [(m, baseline) for m in models if m != baseline]
    seen: set[frozenset[str]] = set()
    out = []
    for pair in family:
        if frozenset(pair) not in seen:
            seen.add(frozenset(pair))
            out.append(pair)
    return out


def check_evaluate_config(ev: dict[str, Any], models: list[str] | None = None) -> None:
    """What the schema cannot check in the ``evaluate`` section (raised while the DAG is built).
    ``models``: every model name of the study (for ``comparisons``)."""
    if models is not None:
        try:
            comparison_family(list(models), ev.get("comparisons", []))
        except EvaluationError as err:
            raise ConfigError(f"config: {err}") from None
    start, stop = ev["dca_range"]
    if not start < stop:
        raise ConfigError(f"config: evaluate.dca_range: start {start} must be below stop {stop}")
    if ev["dca_step"] > stop - start:
        raise ConfigError(f"config: evaluate.dca_step: {ev['dca_step']} is wider than "
                          f"evaluate.dca_range [{start}, {stop}]")


def recalibration_methods(cnns: Mapping[str, str], fusion_methods: Iterable[str], fused: Iterable[str],
                          others: Iterable[str], *, nested: bool = False) -> dict[str, str]:
    """model -> method of :data:`METHODS`. ``cnns``: CNN name -> its ``imbalance``;
    ``fusion_methods``: fusion.methods (models ``fusion_<method>``) over the CNNs ``fused``;
    ``others``: models whose inner-validation patients selected nothing (baseline, radiomics).
    ``nested`` (train.selection nested): every CNN's validation scores are inner out-of-fold scores
    of models that never trained on those patients, so the CNNs and their ``mean`` fusion are
    logistically recalibrated on them like ``others``."""
    if nested:
        out = {name: "logistic" for name in cnns}
    else:
        out = {name: "prior_shift" if imbalance in ODDS_INFLATING else "none" for name, imbalance in cnns.items()}
    inputs = [out[name] for name in fused if name in out]
    for method in fusion_methods:
        weighted_mean = method == "mean" and inputs and all(m == "prior_shift" for m in inputs)
        cross_mean = method == "mean" and nested
        out[f"fusion_{method}"] = "prior_shift" if weighted_mean else "logistic" if cross_mean else "none"
    out.update({name: "logistic" for name in others})
    return out


def model_recalibration(config: dict[str, Any], specs: dict[str, ModelSpec]) -> dict[str, str]:
    """model -> how evaluation turns its scores into risks (:func:`recalibration_methods` for the
    validated config's models ``specs``, oncoflow.config.expand_models): the
    CNNs and their fusions by their class weighting; radiomics and baseline models, whose
    inner-validation patients selected nothing, by logistic recalibration."""
    methods = list(config["fusion"]["methods"])
    return recalibration_methods({n: s.params.get("imbalance", "none") for n, s in specs.items()}, methods,
                                 fusion_inputs(config, specs) if methods else [],
                                 [*radiomics_models(config), BASELINE],
                                 nested=(config.get("train") or {}).get("selection") == "nested")


def evaluate_params(config: dict[str, Any], specs: dict[str, ModelSpec] | None = None) -> dict[str, Any]:
    """What evaluate_models reads besides its inputs: the evaluate section's threshold and interval
    settings, and each model's recalibration. ``specs``: the plan's expanded models (None: expanded
    from ``config`` here, for an archive's config recomputed without a plan)."""
    e = config["evaluate"]
    return {**{k: e[k] for k in ("threshold", "ci_method", "ci_level", "n_boot")},
            "recalibration": model_recalibration(config, expand_models(config) if specs is None else specs)}
