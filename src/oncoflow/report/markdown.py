"""The small Markdown subset that oncoflow writes (methods.md, the model card), as a standalone HTML
page for the Snakemake report: headings, paragraphs, **bold**, `code`, numbered and bullet lists,
pipe tables, HTML comments dropped."""

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
        elif lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:])
                else:  # a line that does not open an item continues the last one
                    items[-1] += " " + line.strip()
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
        elif len(lines) > 1 and all(line.startswith("|") for line in lines) and set(lines[1]) <= set("|-: "):
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in cells[2:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            body.append(f"<p>{_inline(' '.join(lines))}</p>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.5}"
            "td,th{border:1px solid #ccc;padding:.2em .5em}table{border-collapse:collapse}</style></head>"
            f"<body>\n{chr(10).join(body)}\n</body></html>\n")
