"""The end of a failed run (`snakemake --keep-going`): which jobs failed, for which subject, and why.

Snakemake's own summary names the rule and the log file only; the reason is the last exception in that
log (a PreprocessError/IngestError line that starts with the subject in brackets). The cohort QC
table cannot be made by its rule when a subject failed before QC (an input is missing), so the
end of the run writes it with the failed subjects' errors (``write_qc_after_failure``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from oncoflow import atomic
from oncoflow.preprocess.qc import summarize_with_failures

_ERROR = re.compile(r"^Error in rule (\S+):\s*$")
_LOG = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$")
_START = re.compile(r"^(?:local)?rule (\S+):\s*$")
_JOBID = re.compile(r"^\s+jobid: (\d+)\s*$")
_SUBJECT = re.compile(r"^\s+wildcards: (?:.*, )?subject=([^,\s]+)")


@dataclass(frozen=True)
class FailedJob:
    rule: str
    log: str  # the job's log file (results/<study>/logs/<rule>/<subject>.log), "" when it has none
    reason: str
    subject: str = ""  # the job's {subject} wildcard, "" for cohort-level jobs


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): ")


def last_line(path: Path) -> str:
    """What a failed script's log ends with: its last exception's message (all its lines, joined), or
    the last non-empty line."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log file)"
    if not lines:
        return "(empty log)"
    raised = [k for k, line in enumerate(lines) if _RAISED.match(line)]
    text = " ".join(lines[raised[-1]:]) if raised else lines[-1]
    # "oncoflow.ingest.errors.IngestError: [demo002] ...": the message, which names the subject
    return re.sub(r"^[\w.]+(?:Error|Exception): (?=\[)", "", text)


def _block(lines: list[str], start: int) -> list[str]:
    """The indented lines after a block's heading (``rule x:``, ``Error in rule x:``)."""
    block = []
    for line in lines[start + 1:start + 20]:
        if not line.startswith(" "):
            break
        block.append(line)
    return block


def _field(block: list[str], pattern: re.Pattern[str]) -> str:
    return next((found.group(1) for line in block if (found := pattern.match(line))), "")


def failed_jobs(snakemake_log: Path | str) -> list[FailedJob]:
    """Every ``Error in rule`` block of Snakemake's run log, with the reason from the job's own log and
    the subject from the job's start block (the error block has its jobid, not its wildcards)."""
    lines = Path(snakemake_log).read_text(errors="replace").splitlines()
    subjects = {}
    for k, line in enumerate(lines):
        if _START.match(line):
            block = _block(lines, k)
            subjects[_field(block, _JOBID)] = _field(block, _SUBJECT)
    failed = []
    for k, line in enumerate(lines):
        match = _ERROR.match(line)
        if not match:
            continue
        block = _block(lines, k)
        log = _field(block, _LOG).split(", ")[0]
        failed.append(FailedJob(match.group(1), log, last_line(Path(log)) if log else "(the job has no log)",
                                subjects.get(_field(block, _JOBID), "")))
    return failed


def _logs(snakemake_logs: list[str] | str) -> list[Path]:
    logs = [snakemake_logs] if isinstance(snakemake_logs, str) else list(snakemake_logs)
    return [Path(log) for log in logs if Path(log).is_file()]


def failed_in(snakemake_logs: list[str] | str) -> list[FailedJob]:
    return [job for log in _logs(snakemake_logs) for job in failed_jobs(log)]


def planned_rules(snakemake_logs: list[str] | str) -> set[str]:
    """The rules of the run's "Job stats" table (what the targets needed)."""
    rules = set()
    for log in _logs(snakemake_logs):
        lines = log.read_text(errors="replace").splitlines()
        for k, line in enumerate(lines):
            if line.strip() == "Job stats:":
                for row in lines[k + 3:]:
                    found = re.match(r"^(\w+)\s+\d+\s*$", row)
                    if not found:
                        break
                    rules.add(found.group(1))
    return rules - {"total"}


def format_failures(snakemake_logs: list[str] | str) -> str:
    jobs = failed_in(snakemake_logs)
    if not jobs:
        return ""
    lines = [f"{len(jobs)} job(s) failed (fix the input, or remove the subject's row from the sample sheet "
             "and keep a note of why; then run again):"]
    lines += [f"  {job.rule}: {job.reason}" + (f"  [log: {job.log}]" if job.log else "") for job in jobs]
    return "\n".join(lines)


def run_start(snakemake_logs: list[str] | str) -> float:
    """When the run began (epoch seconds), from its log's name (``2026-11-30T222614.980770.snakemake.log``);
    infinity when unknown (no file counts as made by this run)."""
    import datetime as dt

    for log in _logs(snakemake_logs):
        try:
            return dt.datetime.strptime(log.name.split(".snakemake")[0], "%Y-%m-%dT%H%M%S.%f").timestamp()
        except ValueError:
            continue
    return float("inf")


def write_qc_after_failure(snakemake_logs: list[str] | str, results: str, subjects: list[str],
                           modalities: list[str]) -> str:
    """qc/qc.tsv after a run that was to make it (summarize_qc planned) in which subjects of the cohort
    failed: the failed subjects first, their flag naming the rule and the error, then every subject
    whose QC row was made, as summarize_qc writes them. Its time stamp is set to 1970, so the next run
    remakes it with summarize_qc (the rows made then are newer). Returns a line for the end of the
    run ("" when nothing was written)."""
    cohort = set(subjects)
    failed = {job.subject: job for job in failed_in(snakemake_logs) if job.subject in cohort}
    if not failed or "summarize_qc" not in planned_rules(snakemake_logs):  # the run was not to make it
        return ""
    started = run_start(snakemake_logs)
    paths = {s: Path(results) / "qc" / f"{s}.tsv" for s in subjects}
    # a failed subject's own row is kept only when this run made it (QC ran, a later step failed: the crop)
    done = [s for s, path in paths.items() if path.is_file() and (s not in failed or path.stat().st_mtime >= started)]
    rows = [pd.read_csv(paths[s], sep="\t", dtype={"subject": str}) for s in done]
    errors = {s: f"failed in {job.rule}: {job.reason}" + (f" (log: {job.log})" if job.log else "")
              for s, job in failed.items()}
    errors |= {s: "not processed: the run stopped before its QC (snakemake --keep-going lets the other "
                  "subjects finish)" for s in subjects if s not in failed and s not in done}
    table = summarize_with_failures(rows, errors, modalities)
    out = Path(results) / "qc" / "qc.tsv"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_table(table, out, index=False)
    os.utime(out, (0, 0))  # out of date for Snakemake: the next run remakes it from the subjects' rows
    return (f"{out}: written with {len(failed)} failed subject(s) first ({', '.join(sorted(failed))}); "
            "the next run remakes it")
