"""Paper tables from DataFrames, without optional dependencies (tabulate, jinja2): Markdown,
LaTeX, and HTML for the Snakemake report.

Floats use ``floatfmt``; NaN / None are written as ``na_rep``; ints and strings verbatim.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Callable

import pandas as pd

__all__ = ["to_markdown", "to_latex", "to_html"]


def readable(x: float) -> str:
    """Three significant digits without exponents where a reader expects none (volumes in mL,
    AUCs, p-values down to 0.001)."""
    a = abs(x)
    if a >= 100 or a == 0:
        return f"{x:.1f}" if a < 1e6 else f"{x:.3e}"
    return f"{x:.3g}" if a >= 0.001 else f"{x:.2e}"


def _cell(v: object, floatfmt: str | Callable[[float], str], na_rep: str) -> str:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
        return na_rep
    if isinstance(v, (bool, numbers.Integral)):
        return str(v)
    if isinstance(v, numbers.Real):
        return floatfmt(float(v)) if callable(floatfmt) else format(float(v), floatfmt)
    return str(v)


def _grid(df: pd.DataFrame, floatfmt: str | Callable[[float], str], na_rep: str, index: bool) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, body cells and per-column 'is numeric' flags (numeric columns align right)."""
    if index:
        df = df.reset_index()
    header = [str(c) for c in df.columns]
    body = [[_cell(v, floatfmt, na_rep) for v in row] for row in df.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in df.dtypes]
    return header, body, numeric


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3f", index: bool = False, na_rep: str = "NA") -> str:
    """GitHub-flavoured pipe table; numeric columns right-aligned, others left-aligned."""
    header, body, numeric = _grid(df, floatfmt, na_rep, index)
    esc = [[c.replace("|", r"\|") for c in row] for row in [header, *body]]
    width = [max(3, *(len(row[j]) for row in esc)) for j in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                 for c, w, num in zip(row, width, numeric)) + " |"

    rule = "|" + "|".join((("-" * (w + 1)) + ":") if num else (":" + "-" * (w + 1))
                          for w, num in zip(width, numeric)) + "|"
    return "\n".join([line(esc[0]), rule, *(line(r) for r in esc[1:])]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}",
}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in s)


def to_latex(df: pd.DataFrame, floatfmt: str = ".3f", index: bool = False, na_rep: str = "--") -> str:
    """booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); special characters escaped."""
    header, body, numeric = _grid(df, floatfmt, na_rep, index)
    spec = "".join("r" if num else "l" for num in numeric)
    rows = [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in [header, *body]]
    return "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\toprule", rows[0], r"\midrule",
                      *rows[1:], r"\bottomrule", r"\end{tabular}"]) + "\n"


def to_html(df: pd.DataFrame, floatfmt: str | Callable[[float], str] = readable, na_rep: str = "NA",
            index: bool = False) -> str:
    """A ``<table>`` (no page around it); numeric columns carry ``class="num"`` (right-aligned by
    the page's style), every cell escaped."""
    header, body, numeric = _grid(df, floatfmt, na_rep, index)
    numeric_class = ' class="num"'

    def cells(row: list[str], tag: str) -> str:
        return "".join(f"<{tag}{numeric_class if num else ''}>{html.escape(c)}</{tag}>" for c, num in zip(row, numeric))

    rows = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in body)
    return f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{rows}</tbody></table>"
