"""Do a results folder's paper tables (.md, .tex) show what the .tsv beside them holds?

`oncoflow verify-archive` checks every file against the manifest, but a manifest can be recomputed;
a number changed in metrics.md alone would still pass. Each shown cell must equal its TSV value to
the shown precision (one unit in the last shown digit: the TSV itself is rounded)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from oncoflow.metrics.tables import _latex_escape

_MISSING = {"NA", "--", ""}


def _markdown_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = line.strip().strip("|").replace(r"\|", "\x00").split("|")
        rows.append([c.strip().replace("\x00", "|") for c in cells])
    return rows


def _latex_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    body = [line for line in lines if line.endswith(r" \\")]
    return [[c.strip() for c in line[: -len(r" \\")].split(" & ")] for line in body]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _same(shown: str, value: str, *, latex: bool) -> bool:
    if shown in _MISSING:
        return value.strip().lower() in {"", "nan", "na"}
    for prefix in ("<", r"\textless{}"):
        if shown.startswith(prefix) and _number(shown[len(prefix):]) is not None:
            return _number(value) is not None and _number(value) < _number(shown[len(prefix):])
    a, b = _number(shown), _number(value)
    if a is not None and b is not None:
        decimals = len(shown.split(".")[1]) if "." in shown and "e" not in shown.lower() else 0
        return abs(a - b) <= 10.0 ** -decimals * 1.0001
    return shown == (_latex_escape(value) if latex else value)


def check_tables(folder: Path) -> list[str]:
    """Problems of every ``<name>.md`` / ``<name>.tex`` in ``folder`` against ``<name>.tsv``."""
    problems = []
    for derived in sorted([*folder.glob("*.md"), *folder.glob("*.tex")]):
        tsv = derived.with_suffix(".tsv")
        where = f"{derived.parent.name}/{derived.name}"
        if not tsv.is_file():
            problems.append(f"{where}: no {tsv.name} to check it against")
            continue
        latex = derived.suffix == ".tex"
        rows = (_latex_rows if latex else _markdown_rows)(derived.read_text())
        table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
        if not rows or len(rows) - 1 != len(table):
            problems.append(f"{where}: {max(len(rows) - 1, 0)} rows, {tsv.name} has {len(table)}")
            continue
        header = rows[0]
        columns = {c: (_latex_escape(c) if latex else c) for c in table.columns}
        position = {shown: j for j, shown in enumerate(header)}
        for column, shown_name in columns.items():
            j = position.get(shown_name)
            if j is None:
                continue
            for i, row in enumerate(rows[1:]):
                if j < len(row) and not _same(row[j], table.at[i, column], latex=latex):
                    problems.append(f"{where}: row {i + 1}, column {column!r} shows {row[j]!r} but "
                                    f"{tsv.name} holds {table.at[i, column]!r}")
    return problems
