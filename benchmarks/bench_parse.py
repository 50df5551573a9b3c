"""Benchmark: what every Snakemake invocation pays before the first job runs (parse, plan, DAG).

    .venv/bin/python benchmarks/bench_parse.py                  # 100, 1,000, 5,000 subjects
    .venv/bin/python benchmarks/bench_parse.py --sizes 100 1000 --baseline ../old  # and another checkout

For each size a synthetic NIfTI sample sheet (empty files: the plan only checks that they exist)
with the demo config (4 modalities, 3 models x 5 folds, 2 fusions, baseline, reports). Each number
is one process, timed from outside (wall, CPU = user + system of the child, peak RSS):

- **our imports**: `import snakemake.api` + the package modules common.smk imports, minus
  `import snakemake.api` alone (what our imports add to every invocation); **plan's imports**: what
  `StudyPlan.from_config` imports inside itself (at 308c7fb/d887af9 oncoflow.metrics.evaluate, which
  pulls scipy.stats; nothing since the config.py split, whose plan.py imports at module top);
- **plan**: schema validation of config and sheet + `StudyPlan.from_config`, its imports done;
- **dry run**: `snakemake -n --quiet rules --cores 1` on the whole workflow (parse + plan + DAG);
- **one job**: `snakemake --cores 1 <one QC file> --allowed-rules ...` as a SLURM job starts it
  (`--mode remote` is close to this: the job re-parses the workflow and builds the DAG of its target);
- **empty plan**: the same workflow shape without us: a generated Snakefile with the same rules,
  output patterns and jobs (each rule's inputs a dict lookup, Snakemake's default wildcard regex, no
  imports, no checks), dry-run the same way. Ours / empty is what our code and constraints add.

Writes parse.md (and parse.json, the raw rows). The growth exponent is the slope of log(time) against log(subjects) over the sizes measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
OUT = Path(__file__).with_name("parse.md")
MODALITIES = ("t1", "t1ce", "t2", "flair")
# the modules common.smk imports at parse time (and so every job's start)
OUR_IMPORTS = "import oncoflow.config, oncoflow.plan, oncoflow.sheet, oncoflow.runtime, oncoflow.wildcards, snakemake.utils"


def make_cohort(root: Path, n: int) -> Path:
    """``n`` subjects (1 in 7 external), every file empty; returns the workdir."""
    data = root / "data" / "demo"
    rows = ["subject\tlabel\tcohort\tdicom\tnifti\ttumor_mask\ttumor_mask_space\tage\tsex"]
    for i in range(n):
        subject = f"sub{i:05d}"
        folder = data / "nifti" / subject
        folder.mkdir(parents=True)
        for modality in MODALITIES:
            (folder / f"{modality}.nii.gz").touch()
        (folder / "tumor.nii.gz").touch()
        cohort = "external" if i % 7 == 6 else "train"
        rows.append(f"{subject}\t{i % 2}\t{cohort}\t\tnifti/{subject}\tnifti/{subject}/tumor.nii.gz\tt1ce"
                    f"\t{40 + i % 30}\t{'MF'[i % 2]}")
    (data / "samples.tsv").write_text("\n".join(rows) + "\n")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    (root / "config").mkdir()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def timed(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Wall, CPU and peak RSS of one child process (GNU time's format, read back)."""
    stats = cwd / "time.txt"
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(stats), *cmd], cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    user, system, rss_kb = stats.read_text().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss_mb": int(rss_kb) / 1024, "stdout": done.stdout}


def python(code: str, cwd: Path) -> dict[str, float]:
    return timed([sys.executable, "-c", code], cwd)


PLAN_CODE = """
import time, yaml
from pathlib import Path
clock = lambda: (time.perf_counter(), time.process_time())
t0 = clock()
from snakemake.utils import validate
from oncoflow.plan import StudyPlan
{deferred}
t1 = clock()
config = yaml.safe_load(open("config/config.yaml"))
validate(config, "{repo}/workflow/schemas/config.schema.yaml", set_default=True)
check = lambda sheet: validate(sheet, "{repo}/workflow/schemas/samples.schema.yaml")
plan = StudyPlan.from_config(config, check_sheet=check)
t2 = clock()
print(t1[0] - t0[0], t1[1] - t0[1], t2[0] - t1[0], t2[1] - t1[1], len(plan.subjects))
"""
# what StudyPlan.from_config imports inside itself (timed with the imports, not the plan): nothing
# since config.py was split (plan.py imports at module top; before: oncoflow.metrics.evaluate & co.)
DEFERRED = "pass"


def dry_run(workdir: Path, snakefile: Path, *args: str) -> dict[str, float]:
    return timed([str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), "--cores", "1", *args], workdir)


JOB = re.compile(r"^\s*(?:local)?rule (\w+):$")
FIELD = re.compile(r"^\s+(\w+): (.*)$")


def listed_jobs(listing: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, fields) of each job in a dry run's listing."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in listing.splitlines():
        if match := JOB.match(line):
            jobs.append((match.group(1), {}))
        elif jobs and (field := FIELD.match(line)):
            jobs[-1][1].setdefault(field.group(1), field.group(2))
    return jobs


def empty_plan_snakefile(workdir: Path) -> Path:
    """The same rules, output/log/benchmark patterns and jobs as ours, nothing of ours: each job's
    inputs come from a dict keyed by rule and wildcards (read from our dry run's job listing),
    Snakemake's default wildcard regex, no imports, no checks."""
    listing = dry_run(workdir, REPO / "Snakefile", "-n")["stdout"]
    patterns = rule_patterns(workdir)
    inputs: dict[str, dict[str, list[str]]] = {}
    targets: list[str] = []
    for rule, fields in listed_jobs(listing):
        files = [f for f in fields.get("input", "").split(", ") if f]
        if rule == "all":
            targets = files
            continue
        inputs.setdefault(rule, {})[fields.get("wildcards", "")] = files
    (workdir / "inputs.json").write_text(json.dumps(inputs))
    lines = ["import json", "INPUTS = json.load(open('inputs.json'))", "",
             "def inputs_of(rule):",
             "    def lookup(wildcards):",
             "        key = ', '.join(f'{k}={v}' for k, v in wildcards.items())",
             "        return INPUTS[rule][key]",
             "    return lookup", "", "rule all:", f"    input: {listed(targets)}", ""]
    for rule in inputs:
        lines += [f"rule {rule}:", f"    input: inputs_of({rule!r})", f"    output: {listed(patterns[rule]['output'])}"]
        for kind in ("log", "benchmark"):
            if patterns[rule][kind]:
                lines.append(f"    {kind}: {listed(patterns[rule][kind])}")
        lines += ["    shell: 'touch {output}'", ""]
    snakefile = workdir / "Snakefile.empty_plan"
    snakefile.write_text("\n".join(lines))
    return snakefile


def listed(files: list[str]) -> str:
    return ", ".join(repr(f) for f in files)


RULES_CODE = """
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(ResourceSettings(cores=1), snakefile=Path("{repo}/Snakefile"),
                      workdir=Path("."))._workflow
    rules = {r.name: {"output": [str(f) for f in r.output], "log": [str(f) for f in r.log],
                      "benchmark": [str(r.benchmark)] if r.benchmark else []} for r in wf.rules}
json.dump(rules, open("rules.json", "w"))
"""


def rule_patterns(workdir: Path) -> dict[str, dict[str, list[str]]]:
    """Each rule's output and log patterns, wildcards as written (regexes dropped)."""
    python(RULES_CODE.replace("{repo}", str(REPO)), workdir)
    rules = json.loads((workdir / "rules.json").read_text())
    strip = re.compile(r"\{(\w+),[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
    return {name: {k: [strip.sub(r"{\1}", p) for p in v] for k, v in r.items()} for name, r in rules.items()}


def measure(n: int, root: Path, baseline: Path | None) -> dict[str, float]:
    workdir = make_cohort(root / f"n{n}", n)
    base = python("import snakemake.api", workdir)
    ours = python(f"import snakemake.api; {OUR_IMPORTS}", workdir)
    deferred = python(f"import snakemake.api; {OUR_IMPORTS}; {DEFERRED}", workdir)
    plan = python(PLAN_CODE.replace("{repo}", str(REPO)).replace("{deferred}", DEFERRED), workdir)
    *_, plan_s, plan_cpu, subjects = plan["stdout"].split()
    assert int(subjects) == n, plan["stdout"]
    dry = dry_run(workdir, REPO / "Snakefile", "-n", "--quiet", "rules")
    jobs = int(re.search(r"^total\s+(\d+)$", dry["stdout"], re.MULTILINE).group(1))
    qc = "results/demo/qc/sub00000.png"
    one = dry_run(workdir, REPO / "Snakefile", qc, "-n", "--quiet", "rules")
    empty = dry_run(workdir, empty_plan_snakefile(workdir), "-n", "--quiet", "rules")
    row = {"subjects": n, "jobs": jobs, "snakemake_import_cpu": base["cpu"], "our_imports_cpu": ours["cpu"] - base["cpu"],
           "deferred_imports_cpu": deferred["cpu"] - ours["cpu"], "plan": float(plan_s), "plan_cpu": float(plan_cpu),
           "dry_wall": dry["wall"], "dry_cpu": dry["cpu"], "dry_rss_mb": dry["rss_mb"], "one_job_wall": one["wall"],
           "one_job_cpu": one["cpu"], "empty_wall": empty["wall"], "empty_cpu": empty["cpu"],
           "empty_rss_mb": empty["rss_mb"]}
    if baseline:  # the same dry run with another checkout's workflow, in the same minute
        before = dry_run(workdir, baseline / "Snakefile", "-n", "--quiet", "rules")
        row.update(baseline_wall=before["wall"], baseline_cpu=before["cpu"], baseline_rss_mb=before["rss_mb"])
    return row


def slope(rows: list[dict[str, float]], key: str) -> float:
    xs = [math.log(r["subjects"]) for r in rows]
    ys = [math.log(r[key]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def report(rows: list[dict[str, float]], load: str, commit: str, baseline: str) -> str:
    head = ("| subjects | jobs | our imports | plan's imports | plan | dry run (wall s) | peak MB | one job (wall s) | "
            "empty plan (wall s) | empty-plan peak MB | ours / empty |" + (f" {baseline} (wall s) | ours / {baseline} |"
                                                                         if baseline else ""))
    lines = [head, "|" + "--:|" * head.count(" |")]
    for r in rows:
        line = (f"| {r['subjects']:,} | {r['jobs']:,} | {r['our_imports_cpu']:.2f} | {r['deferred_imports_cpu']:.2f} | "
                f"{r['plan_cpu']:.2f} | {r['dry_cpu']:.1f} ({r['dry_wall']:.0f}) | {r['dry_rss_mb']:.0f} | "
                f"{r['one_job_cpu']:.1f} ({r['one_job_wall']:.0f}) | {r['empty_cpu']:.1f} ({r['empty_wall']:.0f}) | "
                f"{r['empty_rss_mb']:.0f} | {r['dry_cpu'] / r['empty_cpu']:.2f} |")
        if baseline:
            line += f" {r['baseline_cpu']:.1f} ({r['baseline_wall']:.0f}) | {r['dry_cpu'] / r['baseline_cpu']:.2f} |"
        lines.append(line)
    growth = ""
    if len(rows) > 1:
        sizes = ", ".join(f"{r['subjects']:,}" for r in rows)
        keys = {"dry run": "dry_cpu", "empty plan": "empty_cpu", "plan": "plan_cpu", "jobs": "jobs"}
        if baseline:
            keys[baseline] = "baseline_cpu"
        growth = (f"Growth exponent (log-log slope over {sizes} subjects; 1.00 is linear): "
                  + ", ".join(f"{k} {slope(rows, v):.2f}" for k, v in keys.items()) + ".\n")
    return (f"Generated by `benchmarks/bench_parse.py` on {date.today()} at commit {commit}.\n\n"
            "CPU seconds (user + system of the process), wall seconds in brackets. Snakemake's own import: "
            f"{rows[0]['snakemake_import_cpu']:.2f} CPU s.\n\n" + "\n".join(lines) + "\n\n" + growth +
            f"\n**Machine**: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"load average before the run {load} (shared machine: wall times grow with the load; CPU seconds "
            f"much less). Python {platform.python_version()}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. a worktree of an older commit): its "
                        "dry run in the same minute, for a before/after ratio")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(REPO / "src")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rows.append(measure(n, Path(tmp), args.baseline))
            print({k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    baseline = ""
    if args.baseline:
        baseline = "commit " + subprocess.run(["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"],
                                              capture_output=True, text=True).stdout.strip()
    args.out.write_text(report(rows, load, commit, baseline))
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
