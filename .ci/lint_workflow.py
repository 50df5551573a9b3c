"""`snakemake --lint` on the default config and on every study config in config/studies/, each with a
tiny study-shaped demo sheet (oncoflow.demo; the lint reads the sheet, no image) and empty
placeholder weights files. Exit status 1 when any config has a finding."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from oncoflow.demo import STUDY_SHAPES, make_demo_cohort

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# Configs without a demo shape of their own: the cohort shape they read.
SHAPE_OF = {"lgg_radiomics": "lgg_radiogenomics"}


def lint(config_path: Path, workdir: Path) -> bool:
    config = yaml.safe_load(config_path.read_text())
    name = SHAPE_OF.get(config_path.stem, config_path.stem)
    shape = STUDY_SHAPES.get(name)
    kwargs = {"shape": shape, "external_fraction": shape.external_fraction} if shape else {"external_fraction": 0.25}
    sheet = make_demo_cohort(workdir / "data", 8, seed=5, voxel_scale=4.0, **kwargs)
    modalities = list(config["ingest"]["modalities"])
    rows = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    if not set(rows["tumor_mask_space"]) <= set(modalities):  # e.g. lgg_radiomics reads FLAIR only
        rows["tumor_mask_space"] = config["preprocess"]["reference"]
    for column in (config.get("radiomics") or {}).get("clinical", []):  # e.g. gender: a covariate column
        rows[column] = rows.get(column, "1")
    rows.to_csv(sheet, sep="\t", index=False)
    config["cohort"]["samples"] = str(sheet)
    for entry in [*config.get("models", []), *config.get("pretrain", [])]:
        if entry.get("weights"):  # checked when the DAG is built, not by the lint: present but empty
            (workdir / entry["weights"]).parent.mkdir(parents=True, exist_ok=True)
            (workdir / entry["weights"]).touch()
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    t0 = time.perf_counter()
    done = subprocess.run([str(SNAKEMAKE), "--lint", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           "--configfile", str(configfile)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    ok = done.returncode == 0 and "Lints for" not in done.stdout + done.stderr
    print(f"snakemake --lint {config_path.relative_to(REPO)}: {'clean' if ok else 'FINDINGS'} "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if not ok:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
    return ok


def main() -> int:
    configs = [REPO / "config/config.yaml", *sorted((REPO / "config/studies").glob("*.yaml"))]
    results = []
    for path in configs:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(lint(path, Path(tmp)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
