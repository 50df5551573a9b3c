"""``oncoflow predict BUNDLE SHEET``: unpack and check a bundle, write the predict config (the
bundle's resolved config plus a ``predict`` section), and run the workflow's predict targets in
the current folder. Needs only the installed package (its Snakefile) and the new exams."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from oncoflow.predict.manifest import PreparationMismatch, check_preparation, preparation
from oncoflow.report.archive import MANIFEST, DigestError, _safe_extract, _sha256_file, check_digest


class PredictError(ValueError):
    pass


def snakefile() -> Path:
    """The workflow that ships with this package (the checkout it is installed from)."""
    path = Path(__file__).resolve().parents[3] / "Snakefile"
    if not path.is_file():
        raise PredictError(f"the oncoflow workflow (Snakefile) is not next to the package ({path}); install "
                           "oncoflow from its repository checkout (pip install -e .)")
    return path


def bundle_study(tar_path: Path) -> str:
    """The study folder at the top of a bundle."""
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PredictError(f"{tar_path}: not a bundle made by `snakemake bundle` ({exc})") from None
    if first is None:
        raise PredictError(f"{tar_path}: empty archive")
    return first.name.split("/", 1)[0]


def unpack_bundle(tar_path: Path, into: Path) -> Path:
    """Unpack ``tar_path`` into ``into`` (kept when it already holds the same bundle) and check
    every file against MANIFEST.sha256; returns the bundle folder (``into/<study>``)."""
    study = bundle_study(tar_path)
    root = into / study
    fresh = into.with_name(into.name + ".part")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    try:
        _safe_extract(tar_path, fresh)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        raise PredictError(f"{tar_path}: not a complete, safe bundle ({type(exc).__name__}: {exc})") from None
    problems = check_manifest(fresh / study)
    if problems:
        shutil.rmtree(fresh, ignore_errors=True)
        raise PredictError(f"{tar_path}: " + "; ".join(problems[:5]) + " (the bundle was changed or damaged)")
    same = (root / MANIFEST).is_file() and (root / MANIFEST).read_bytes() == (fresh / study / MANIFEST).read_bytes()
    if same:  # unchanged bundle: keep the old folder (and its mtimes: nothing reruns)
        shutil.rmtree(fresh)
    else:
        shutil.rmtree(into, ignore_errors=True)
        fresh.rename(into)
    return root


def check_manifest(root: Path) -> list[str]:
    if not (root / MANIFEST).is_file():
        return [f"no {MANIFEST}"]
    listed = dict(reversed(line.split("  ", 1)) for line in (root / MANIFEST).read_text().splitlines())
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    problems = [f"missing: {n}" for n in sorted(set(listed) - present)]
    problems += [f"not in {MANIFEST}: {n}" for n in sorted(present - set(listed))]
    problems += [f"checksum mismatch: {n}" for n in sorted(set(listed) & present)
                 if _sha256_file(root / n) != listed[n]]
    return problems


def read_manifest(tar_path: Path) -> dict:
    """bundle.json, checked against MANIFEST.sha256, read from the start of the bundle without
    unpacking the weights (so a refused setting is refused at once)."""
    import hashlib

    listed: dict[str, str] = {}
    with tarfile.open(tar_path, "r:gz") as tar:
        for member in tar:
            name = member.name.split("/", 1)[-1]
            if name == MANIFEST:
                listed = {n: d for d, n in (line.split("  ", 1) for line in
                                            tar.extractfile(member).read().decode().splitlines())}
            elif name == "bundle.json":
                data = tar.extractfile(member).read()
                if listed.get(name) != hashlib.sha256(data).hexdigest():
                    raise PredictError(f"{tar_path}: bundle.json does not match {MANIFEST} (changed or damaged)")
                return json.loads(data)
    raise PredictError(f"{tar_path}: no bundle.json (not made by `snakemake bundle`)")


def sheet_name(sheet: Path) -> str:
    """results/<study>/predict/<name>: the sheet's file name, or its folder's for samples.tsv."""
    return sheet.parent.resolve().name if sheet.stem == "samples" else sheet.stem


def apply_settings(config: dict, settings: list[str]) -> None:
    """``KEY.PATH=VALUE`` (VALUE read as YAML) into ``config``; a key the config lacks is an error."""
    import yaml

    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise PredictError(f"--set {item!r}: expected KEY=VALUE (e.g. evaluate.ci_method=bootstrap)")
        *parents, last = key.split(".")
        node = config
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise PredictError(f"--set {item!r}: the config has no section {key.rsplit('.', 1)[0]!r}")
            node = node[part]
        if last not in node:
            raise PredictError(f"--set {item!r}: the config has no key {key!r}")
        node[last] = yaml.safe_load(value)


def check_sheet(config: dict, sheet: Path, keep_going: bool) -> list[tuple[int, str]]:
    """Read the new sheet as the workflow will, before any folder, job or log exists (a subject ID
    that is an identifier must not name one); with ``keep_going`` the rows with problems of their
    own are returned (line, reason) and left out, else the first problem is a PredictError."""
    from oncoflow.config import ConfigError
    from oncoflow.sheet import load_predict_samples

    refused: list[tuple[int, str]] | None = [] if keep_going else None
    try:
        kept = load_predict_samples({**config, "predict": {"samples": str(sheet.resolve())}}, refused=refused)
    except ConfigError as exc:
        raise PredictError(str(exc)) from None
    if kept.empty:
        raise PredictError(f"{sheet}: no row left to score ({len(refused or [])} refused)")
    return refused or []


def prepare(tar_path: Path, sheet: Path, name: str | None = None,
            settings: list[str] | None = None, *, keep_going: bool = False,
            expect_sha256: str | None = None) -> tuple[Path, str, str]:
    """Check the bundle's digest and the sheet, unpack the bundle and write the predict config
    (``settings`` changed); (config file, study, name). ``keep_going``: the sheet's bad rows are
    listed (stderr and refused.tsv) and the other subjects scored."""
    if not tar_path.is_file():
        raise PredictError(f"bundle {tar_path} not found")
    if not sheet.is_file():
        raise PredictError(f"sample sheet {sheet} not found")
    try:
        digest = check_digest(tar_path, expect_sha256)
    except DigestError as exc:
        raise PredictError(f"{exc}; refused") from None
    name = name or sheet_name(sheet)
    study = bundle_study(tar_path)
    manifest = read_manifest(tar_path)
    config = manifest["config"]
    apply_settings(config, settings or [])
    try:  # the workflow checks it again while it builds the DAG
        check_preparation(manifest["preparation"], preparation(config), str(tar_path))
    except PreparationMismatch as exc:
        raise PredictError(str(exc)) from None
    refused = check_sheet(config, sheet, keep_going)
    folder = Path("results") / study / "predict" / name
    bundle = unpack_bundle(tar_path, folder / "bundle")
    config["predict"] = {"bundle": str(bundle), "samples": str(sheet.resolve()), "name": name,
                         "keep_going": keep_going}
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=1) + "\n")
    (folder / "bundle.sha256").write_text(f"{digest}  {tar_path.name}\n")
    (folder / "refused.tsv").unlink(missing_ok=True)
    if refused:
        (folder / "refused.tsv").write_text("line\treason\n" + "".join(f"{line}\t{reason}\n" for line, reason in refused))
        for _, reason in refused:
            print(f"predict: {sheet}: refused (--keep-going): {reason}", file=sys.stderr)
        print(f"predict: {len(refused)} row(s) of {sheet} left out, listed in {folder / 'refused.tsv'}", file=sys.stderr)
    return path, study, name


def run(tar_path: Path, sheet: Path, *, name: str | None = None, cores: int = 1,
        settings: list[str] | None = None, extra: list[str] | None = None, keep_going: bool = False,
        expect_sha256: str | None = None) -> int:
    """Unpack, configure and run the predict targets here; Snakemake's exit status."""
    config, study, name = prepare(tar_path, sheet, name, settings, keep_going=keep_going,
                                  expect_sha256=expect_sha256)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile()), "-d", str(Path.cwd()),
           "--configfile", str(config), "--cores", str(cores), *(extra or [])]
    print(f"predict: {sheet} with bundle {tar_path} -> results/{study}/predict/{name}/", file=sys.stderr)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode
