"""The small Markdown subset that oncoflow writes (methods.md), as a standalone HTML page for the
Snakemake report: headings, paragraphs, **bold**, `code`, numbered lists, HTML comments dropped."""

from __future__ import annotations

import html
import re


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_to_html(text: str, title: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    body = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if lines[0].startswith("#"):
            level = len(lines[0]) - len(lines[0].lstrip("#"))
            body.append(f"<h{level}>{_inline(lines[0].lstrip('#').strip())}</h{level}>")
        elif all(re.match(r"\d+\. ", line) for line in lines):
            body.append("<ol>" + "".join(f"<li>{_inline(line.split('. ', 1)[1])}</li>" for line in lines) + "</ol>")
        else:
            body.append(f"<p>{_inline(' '.join(lines))}</p>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.5}</style></head>"
            f"<body>\n{chr(10).join(body)}\n</body></html>\n")
