"""One .tar.gz for a paper (rule write_archive, target `snakemake archive`), and checking one (`oncoflow verify-archive`).

Inside ``<study>.tar.gz`` everything sits under ``<study>/``:

  MANIFEST.sha256      sha256 and path of every other member (``sha256sum -c`` reads it)
  provenance.json      the results folder's manifest (config, input checksums, versions, ...)
  tables/              metrics.{tsv,md,tex}, predictions.tsv
  folds/splits.tsv     the fold assignment
  figures/, methods.md, report.*   when the results folder has them
  explain/             the explanation maps (PNG overlays, NIfTI) and per-patient tables, when made
  config/              the config file(s) as given, and resolved.json (with every default)
  samples/             the sample sheet
  envs/, pyproject.toml  the software environment (pinned conda envs, Python pins)

The archive is byte-for-byte reproducible from the same files (sorted members, fixed timestamps
and owners), so its own checksum can be quoted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping

from oncoflow.report.table_check import check_tables

MANIFEST = "MANIFEST.sha256"
#: What the archive takes from the results folder, each when present (report.*: `snakemake --report`).
RESULTS_MEMBERS = ("tables", "figures", "qc/qc.tsv", "methods.md", "reporting", "report.html", "report.zip",
                   "explain")  # explain/: the maps reporting/failures.md shows and links
#: Snakemake's marker in a directory output, not a result
SNAKEMAKE_MARKERS = (".snakemake_timestamp",)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(members: Mapping[str, Path | bytes]) -> dict[str, Path | bytes]:
    """Expand folders into their files (arcname/relative path); drop what does not exist."""
    out: dict[str, Path | bytes] = {}
    for name, source in members.items():
        if isinstance(source, bytes):
            out[name] = source
        elif source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file() and p.name not in SNAKEMAKE_MARKERS):
                out[f"{name}/{path.relative_to(source).as_posix()}"] = path
        elif source.is_file():
            out[name] = source
    return out


def write_archive(out: Path, members: Mapping[str, Path | bytes], *, root: str,
                  compresslevel: int = 9) -> dict[str, str]:
    """Write ``out`` (.tar.gz) with ``members`` (arcname -> file, folder or bytes) under ``root/``
    plus MANIFEST.sha256; returns arcname -> sha256. ``compresslevel`` 0 (stored) for members
    that hardly compress (model weights, ~7%: the bundle), 9 otherwise."""
    files = collect(members)
    if MANIFEST in files:
        raise ValueError(f"{MANIFEST} is written by write_archive")
    checksums = {name: _sha256_bytes(src) if isinstance(src, bytes) else _sha256_file(src)
                 for name, src in files.items()}
    manifest = "".join(f"{checksums[name]}  {name}\n" for name in sorted(checksums)).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                   compresslevel=compresslevel) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in [MANIFEST, *sorted(files)]:
            data = manifest if name == MANIFEST else files[name]
            info = tarfile.TarInfo(f"{root}/{name}")
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
            if isinstance(data, bytes):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = data.stat().st_size
                with open(data, "rb") as fh:
                    tar.addfile(info, fh)
    tmp.replace(out)
    return checksums


@dataclass
class Verification:
    root: Path
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)  # files re-derived and compared cell by cell
    not_recomputed: list[str] = field(default_factory=list)  # checked by checksum only

    @property
    def ok(self) -> bool:
        return not self.problems and self.checked > 0


def _safe_extract(tar_path: Path, into: Path) -> None:
    with tarfile.open(tar_path, "r:gz") as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:  # Python without extraction filters: refuse unsafe names ourselves
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts or not (member.isfile() or member.isdir()):
                    raise ValueError(f"{tar_path}: unsafe member {member.name!r}") from None
            tar.extractall(into)


def verify_archive(tar_path: Path, into: Path | None = None, recompute: bool = True) -> Verification:
    """Restore ``tar_path`` (into ``into``, or a temporary folder) and re-check it: every file
    against MANIFEST.sha256 (missing, changed, or not listed), provenance.json's recorded
    checksums against the archived sample sheet, config files and tables, the outputs it records
    as archived against the files present, and (``recompute``) the tables, curve data, figures,
    Table 1 and model card against their recomputation from the archived predictions
    (oncoflow.report.recompute)."""
    holder = None
    if into is None:
        holder = tempfile.TemporaryDirectory(prefix="oncoflow-verify-")
        into = Path(holder.name)
    into.mkdir(parents=True, exist_ok=True)
    try:
        try:
            _safe_extract(tar_path, into)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
            # FilterError (a member outside the folder, an absolute path, a link), not gzip, truncated
            return Verification(into, problems=[f"{tar_path}: not a complete, safe .tar.gz made by "
                                                f"`snakemake archive` ({type(exc).__name__}: {exc}); nothing "
                                                "outside the restore folder was written"])
        roots = [p for p in into.iterdir() if (p / MANIFEST).is_file()]
        if len(roots) != 1:
            return Verification(into, problems=[f"{tar_path}: no single <study>/{MANIFEST} inside"])
        root = roots[0]
        result = Verification(root)
        listed: dict[str, str] = {}
        for number, line in enumerate((root / MANIFEST).read_text().splitlines(), 1):
            digest, sep, name = line.partition("  ")
            if not sep or len(digest) != 64:
                result.problems.append(f"{MANIFEST}:{number}: malformed line {line!r}")
                continue
            listed[name] = digest
        present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
        for name in sorted(set(listed) - present):
            result.problems.append(f"missing: {name}")
        for name in sorted(present - set(listed)):
            result.problems.append(f"not in {MANIFEST}: {name}")
        for name in sorted(set(listed) & present):
            result.checked += 1
            if _sha256_file(root / name) != listed[name]:
                result.problems.append(f"checksum mismatch: {name}")
        result.problems.extend(_check_provenance(root, listed))
        if (root / "tables").is_dir():
            result.problems.extend(check_tables(root / "tables"))
        if recompute:
            from oncoflow.report.recompute import recompute_archive

            again = recompute_archive(root)
            result.problems.extend(again.problems)
            result.recomputed, result.not_recomputed = again.compared, again.not_recomputed
        return result
    finally:
        if holder is not None:
            holder.cleanup()


def _check_provenance(root: Path, listed: Mapping[str, str]) -> list[str]:
    """The manifest's own record of the sample sheet, config files and tables must match the
    archived copies (so the tables are the ones that provenance describes)."""
    path = root / "provenance.json"
    if not path.is_file():
        return ["missing: provenance.json"]
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"provenance.json: not valid JSON ({exc})"]
    if not isinstance(record, dict):
        return ["provenance.json: not a JSON object"]
    problems = []
    by_digest = {digest: name for name, digest in listed.items()}
    expected = []
    if record.get("sample_sheet"):
        expected.append(("sample sheet", record["sample_sheet"], "samples/"))
    for key in ("metrics", "predictions", "splits"):
        if key in (record.get("inputs") or {}):
            expected.append((key, record["inputs"][key], ""))
    for entry in record.get("config_files") or []:
        expected.append(("config file", entry, "config/"))
    for what, entry, folder in expected:
        name = by_digest.get(entry.get("sha256"))
        if name is None or not name.startswith(folder):
            problems.append(f"provenance.json: {what} {entry.get('path')} (sha256 {entry.get('sha256', '')[:12]}…) "
                            "is not in the archive")
    for name in record.get("archived_outputs") or []:  # deleted with its manifest line
        if name not in listed or not (root / name).is_file():
            problems.append(f"missing: {name} (provenance.json lists it among the run's archived outputs)")
    return problems


def archive_sha256(tar_path: Path) -> str:
    """The archive's own checksum, to quote in the paper: the manifest inside can be recomputed by
    whoever edits the archive, so only a checksum kept outside it anchors the archive."""
    return _sha256_file(tar_path)


def digest_path(tar_path: Path) -> Path:
    """``<name>.tar.gz.sha256`` beside the archive or bundle: its identity kept outside the file."""
    return tar_path.with_name(tar_path.name + ".sha256")


def record_digest(tar_path: Path, what: str) -> str:
    """Write ``tar_path``'s sha256 beside it (``sha256sum -c`` reads the file) and print the sentence to
    quote in the paper's data availability statement; returns the digest. (It cannot go inside the
    archive, or into the model card that the archive holds: a file cannot contain its own checksum.)"""
    digest = archive_sha256(tar_path)
    digest_path(tar_path).write_text(f"{digest}  {tar_path.name}\n")
    print(f"data availability: {what} {tar_path.name}, sha256 {digest} (quote it in the paper; check a copy with "
          f"`oncoflow {'predict' if what == 'bundle' else 'verify-archive'} ... --expect-sha256 {digest}`)",
          file=sys.stderr)
    return digest


class DigestError(ValueError):
    pass


def expected_digest(value: str) -> str:
    """An --expect-sha256 value: 64 hex digits, or a .sha256 file (``sha256sum``'s format) holding them."""
    text = value.strip()
    if len(text) != 64 and Path(text).is_file():
        text = Path(text).read_text().split()[0] if Path(text).read_text().split() else ""
    text = text.lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise DigestError(f"--expect-sha256 {value!r}: not a sha256 (64 hex digits) nor a .sha256 file holding one")
    return text


def check_digest(tar_path: Path, expected: str | None) -> str:
    """``tar_path``'s sha256; a DigestError when ``expected`` (as the study recorded it) is given and
    differs: MANIFEST.sha256 inside can be recomputed by whoever edits the file, only a digest
    kept outside it anchors it."""
    digest = archive_sha256(tar_path)
    if expected is not None and digest != expected_digest(expected):
        raise DigestError(f"{tar_path}: sha256 {digest} is not the expected {expected_digest(expected)} "
                          "(--expect-sha256): not the file the study recorded (changed, damaged or another one)")
    return digest


def format_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
