"""All-or-nothing file writes: write to a temporary name in the same folder, check it, rename.

A full disk must fail the job that wrote the file, never leave a truncated output behind: ITK's
NIfTI writer, for one, returns normally after a short write, and a half-written .nii.gz then
fails the *next* rule with a decompression error that does not mention the disk (and a rerun
does not remake it, since the file exists). Every image and table the package writes goes
through ``atomic_write``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteError(OSError):
    """An output could not be written completely; the message names the file and what to do."""


def _check_nifti(path: Path) -> None:
    import nibabel as nib
    import numpy as np

    np.asanyarray(nib.load(path).dataobj)  # reads every byte: a short or corrupt file raises


def _check_gzip(path: Path) -> None:
    with gzip.open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def default_check(path: Path) -> None:
    """Re-read what the writer produced: NIfTI header and voxels, gzip stream integrity."""
    name = path.name
    if name.endswith((".nii", ".nii.gz")):
        _check_nifti(path)
    elif name.endswith(".gz"):
        _check_gzip(path)
    elif name.endswith(".npz"):
        import zipfile

        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
        if broken is not None:
            raise OSError(f"member {broken} of the written archive is corrupt")


def temporary_name(path: Path) -> Path:
    """Same folder (so the rename is atomic) and same suffix (writers pick the format from it)."""
    return path.with_name(f".tmp{os.getpid()}-{path.name}")


@contextmanager
def atomic_write(path: Path | str, check: Callable[[Path], None] | None = default_check) -> Iterator[Path]:
    """Yield a temporary path to write to; on success check it, fsync it and rename it to ``path``.

    Any error (the writer's, a short file, ENOSPC/EFBIG on fsync) removes the temporary file,
    leaves no ``path`` behind and raises WriteError naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if not tmp.is_file():
            raise WriteError(f"{path}: the writer produced no file")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, WriteError)):
            raise
        free = _free_space(path.parent)
        raise WriteError(
            f"{path}: could not be written completely ({type(exc).__name__}: {exc}); {free} free in "
            f"{path.parent}. Free disk space (or raise the quota) and rerun; nothing was left behind."
        ) from exc


def _free_space(folder: Path) -> str:
    try:
        st = os.statvfs(folder)
    except OSError:
        return "unknown space"
    return f"{st.f_bavail * st.f_frsize / 1e6:.1f} MB"


def write_text(path: Path | str, text: str) -> None:
    with atomic_write(path, check=None) as tmp:
        tmp.write_text(text)


def copy_file(src: Path | str, dst: Path | str) -> None:
    import shutil

    with atomic_write(dst) as tmp:
        shutil.copyfile(src, tmp)


def write_table(table, path: Path | str, **to_csv) -> None:
    """A pandas DataFrame as TSV (``to_csv`` keywords, sep defaults to a tab), all or nothing."""
    to_csv.setdefault("sep", "\t")
    with atomic_write(path, check=None) as tmp:
        table.to_csv(tmp, **to_csv)
