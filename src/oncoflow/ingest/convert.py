"""Convert one DICOM series to one NIfTI + BIDS sidecar with dcm2niix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from oncoflow.ingest.errors import IngestError

_STEM = "series"


def find_dcm2niix(dcm2niix: str | None = None) -> str:
    """The dcm2niix executable: the argument, else the PATH, else next to this Python (the venv)."""
    if dcm2niix is not None:
        found = shutil.which(dcm2niix)
        if found is None:
            raise IngestError(f"dcm2niix not found or not executable: {dcm2niix}")
        return found
    found = shutil.which("dcm2niix") or shutil.which("dcm2niix", path=str(Path(sys.executable).parent))
    if found is None:
        raise IngestError("dcm2niix not found on PATH nor next to the Python interpreter; install the "
                          "'dcm2niix' package or pass dcm2niix=<path>")
    return found


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # no symlinks (some filesystems, Windows without privilege)
        shutil.copy2(src, dst)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def convert_series(files: list[Path], out_nifti: Path, out_json: Path, *, dcm2niix: str | None = None) -> None:
    """Run dcm2niix on exactly these files; fail unless it yields exactly one image."""
    if not files:
        raise IngestError(f"no DICOM files given for {out_nifti}")
    out_nifti, out_json = Path(out_nifti), Path(out_json)
    compress = out_nifti.name.endswith(".nii.gz")
    if not compress and not out_nifti.name.endswith(".nii"):
        raise IngestError(f"output must end in .nii.gz or .nii: {out_nifti}")
    exe = find_dcm2niix(dcm2niix)
    where = f"series of {len(files)} file(s) starting {files[0]}"
    with tempfile.TemporaryDirectory(prefix="oncoflow-dcm2niix-") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        dst.mkdir()
        for i, f in enumerate(files):  # numbered names: exports reuse file names across folders
            _link_or_copy(Path(f), src / f"{i:06d}.dcm")
        # -g i: ignore any ~/.dcm2nii.ini; -ba y: anonymised sidecar (strips names, IDs and dates);
        # -f: fixed name, so no header text (name, ID, time) reaches file names; -w 2: a second image
        # gets a suffix instead of overwriting the first (never -w 1: a split would go unnoticed).
        cmd = [exe, "-g", "i", "-z", "y" if compress else "n", "-b", "y", "-ba", "y", "-w", "2",
               "-f", _STEM, "-o", str(dst), str(src)]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        except OSError as exc:
            raise IngestError(f"cannot run dcm2niix ({exe}): {exc}") from exc
        log = run.stdout + run.stderr
        images = sorted(p for p in dst.iterdir() if p.name.endswith((".nii", ".nii.gz")))
        if run.returncode != 0 or not images:
            raise IngestError(f"dcm2niix failed (exit {run.returncode}, {len(images)} image(s)) on the "
                              f"{where}:\n{_tail(log)}")
        if len(images) > 1:
            names = ", ".join(p.name for p in images)
            raise IngestError(
                f"dcm2niix split the {where} into {len(images)} images ({names}): several echoes, "
                f"phase/magnitude, repeated or inconsistent slices? Export a single series or clean it.\n"
                f"{_tail(log)}"
            )
        image = images[0]
        sidecar = image.with_name(image.name.split(".nii")[0] + ".json")
        if not sidecar.exists():
            raise IngestError(f"dcm2niix wrote no JSON sidecar for the {where}:\n{_tail(log)}")
        out_nifti.parent.mkdir(parents=True, exist_ok=True)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(image, out_nifti)
        shutil.move(sidecar, out_json)
