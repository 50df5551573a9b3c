"""What a study plan resolves (targets, every rule's params, fold and model lists), as plain JSON,
for the demo config and every shipped study config on a synthetic sample sheet: the plan needs
the sheet's paths to exist, not to hold images. tests/test_plan_golden.py compares it with
tests/data/plan_golden.json (written from the code before the config split), so a refactor that
changes what any rule is asked to make, or with which params, fails."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
STUDY_CONFIGS = ["config/config.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "config/studies").glob("*.yaml")),
                 *sorted(str(p.relative_to(REPO)) for p in (REPO / "benchmarks").glob("*.yaml")),
                 "config/studies/lgg_radiomics.yaml+combat"]  # no shipped config harmonises: this one does
SUBJECTS = 36  # three sites of 12: enough for leave_one_site_out (cv.min_site_size 10)


def synthetic_config(name: str, root: Path) -> dict[str, Any]:
    """The study config ``name`` (schema defaults filled) pointing at a synthetic sheet in ``root``:
    empty image folders and mask files, labels, cohorts, sites and clinical columns as it reads."""
    file, _, combat = name.partition("+")
    config = yaml.safe_load((REPO / file).read_text())
    if combat:
        config["harmonisation"] = {"method": "combat"}
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    folder = root / Path(name).name
    folder.mkdir(parents=True)
    external = list(config["cohort"]["external"])
    clinical = list((config.get("radiomics") or {}).get("clinical") or [])
    site = config["cohort"].get("site")
    columns = ["subject", "cohort", "dicom", "nifti", "tumor_mask", "tumor_mask_space", config["study"]["label"],
               *([site] if site else []), *clinical]
    rows = []
    for k in range(SUBJECTS):
        subject = f"s{k:03d}"
        (folder / subject).mkdir()
        (folder / f"{subject}_mask.nii.gz").touch()
        values = {"subject": subject, "cohort": external[0] if external and k % 6 == 5 else "train",
                  "dicom": subject, "nifti": "", "tumor_mask": f"{subject}_mask.nii.gz",
                  "tumor_mask_space": config["preprocess"]["reference"],
                  config["study"]["label"]: str(config["study"]["positive"]) if (k * 7) % 5 < 2 else "0"}
        if site:
            values[site] = f"site{k % 3}"
        for j, column in enumerate(clinical):
            values[column] = str(40 + (k * (j + 3)) % 23) if j % 2 == 0 else ("a", "b")[k % 2]
        rows.append("\t".join(values[c] for c in columns))
    sheet = folder / "samples.tsv"
    sheet.write_text("\t".join(columns) + "\n" + "\n".join(rows) + "\n")
    config["cohort"]["samples"] = str(sheet)
    return config


def plan_digest(plan: Any, root: Path) -> dict[str, str]:
    """Everything the rules read from ``plan`` (a StudyPlan): per item, the SHA-256 (16 hex digits)
    of its JSON, with ``root`` written as <root>."""
    digest = {
        "final_targets": plan.final_targets(), "folds": plan.folds, "test_sites": plan.test_sites,
        "model_names": plan.model_names, "fused": plan.fused, "radiomics_variants": plan.radiomics_variants,
        "sr_train": plan.sr_train, "sr_heldout": plan.sr_heldout, "harmonised_models": plan.harmonised_models,
        "harmonisation": plan.harmonisation, "checklists": plan.checklists, "sheet_settings": plan.sheet_settings,
        "split_params": plan.split_params, "evaluate_params": plan.evaluate_params, "crop_params": plan.crop_params,
        "model_params": {m: plan.model_params(m) for m in plan.models},
        "pretrain_params": {f"{p}/{m}": plan.pretrain_params(p, m) for p, m in plan.pretrain_jobs},
        "fold_pretrain_subjects": plan.fold_pretrain_subjects if plan.pretrain_jobs else {},
        "radiomics_superres": {v: plan.radiomics_superres(v) for v in plan.radiomics_variants},
        "bundle_inputs": plan.bundle_inputs(), "bundle_params": plan.bundle_params,
        "weight_files": plan.weight_files(), "provenance_subjects": plan.provenance_subjects,
        "tumor_crop_subjects": plan.tumor_crop_subjects, "radiomics_subjects": plan.radiomics_subjects,
    }
    return {key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).replace(str(root), "<root>").encode())
            .hexdigest()[:16] for key, value in digest.items()}


def all_digests(study_plan: Any, root: Path) -> dict[str, Any]:
    """config file -> plan_digest, for every shipped study config (``study_plan``: the StudyPlan class).

    To rewrite the golden after a deliberate change of what a plan resolves (say why in the commit):
    ``cd tests && python -c "import json, tempfile, pathlib; from plan_digest import all_digests;
    from oncoflow.plan import StudyPlan; d = tempfile.mkdtemp(); pathlib.Path('data/plan_golden.json')
    .write_text(json.dumps(all_digests(StudyPlan, pathlib.Path(d)), sort_keys=True, indent=1) + chr(10))"``"""
    return {name: plan_digest(study_plan.from_config(synthetic_config(name, root)), root) for name in STUDY_CONFIGS}
