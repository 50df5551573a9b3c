"""The end of a failed run (`snakemake --keep-going`): which jobs failed, for which subject, and why.

Snakemake's own summary names the rule and the log file only; the reason is the last line of that
log (a PreprocessError/IngestError line that starts with the subject in brackets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ERROR = re.compile(r"^Error in rule (\S+):\s*$")
_LOG = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$")


@dataclass(frozen=True)
class FailedJob:
    rule: str
    log: str  # the job's log file (results/<study>/logs/<rule>/<subject>.log), "" when it has none
    reason: str


def last_line(path: Path) -> str:
    """The last non-empty line of a job's log: the exception message a failed script ends with."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log file)"
    return lines[-1] if lines else "(empty log)"


def failed_jobs(snakemake_log: Path | str) -> list[FailedJob]:
    """Every ``Error in rule`` block of Snakemake's run log, with the reason from the job's own log."""
    failed = []
    lines = Path(snakemake_log).read_text(errors="replace").splitlines()
    for k, line in enumerate(lines):
        match = _ERROR.match(line)
        if not match:
            continue
        log = ""
        for following in lines[k + 1:k + 15]:
            found = _LOG.match(following)
            if found:
                log = found.group(1).split(", ")[0]
                break
            if not following.startswith(" "):
                break
        failed.append(FailedJob(match.group(1), log, last_line(Path(log)) if log else "(the job has no log)"))
    return failed


def format_failures(snakemake_logs: list[str] | str) -> str:
    logs = [snakemake_logs] if isinstance(snakemake_logs, str) else list(snakemake_logs)
    jobs = [job for log in logs if Path(log).is_file() for job in failed_jobs(log)]
    if not jobs:
        return ""
    lines = [f"{len(jobs)} job(s) failed (fix the input, or remove the subject's row from the sample sheet "
             "and keep a note of why; then run again):"]
    lines += [f"  {job.rule}: {job.reason}" + (f"  [log: {job.log}]" if job.log else "") for job in jobs]
    return "\n".join(lines)
