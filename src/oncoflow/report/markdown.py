"""The small Markdown subset that oncoflow writes (methods.md, the model card), as a standalone HTML
page for the Snakemake report: headings, paragraphs, **bold**, `code`, numbered and bullet lists,
pipe tables, links and images, HTML comments dropped."""

from __future__ import annotations

import html
import re
from collections.abc import Callable


def _inline_text(text: str, image: Callable[[str], str] | None = None) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)",
                  lambda m: f'<img alt="{m[1]}" src="{image(m[2]) if image else m[2]}">', text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_body(text: str, image: Callable[[str], str] | None = None) -> str:
    """The HTML of the Markdown ``text`` (no page around it); ``image`` turns an image's path into
    its ``src`` (e.g. a data URI, so that the page stands alone)."""
    def _inline(line: str) -> str:
        return _inline_text(line, image)

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
            cells = [[c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
                     for line in lines]
            num = [' class="num"' if c.endswith(":") and not c.startswith(":") else "" for c in cells[1]]
            head = "".join(f"<th{a}>{_inline(c)}</th>" for c, a in zip(cells[0], num))
            rows = "".join("<tr>" + "".join(f"<td{a}>{_inline(c)}</td>" for c, a in zip(row, num)) + "</tr>"
                           for row in cells[2:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            body.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(body)


def html_page(title: str, body: str) -> str:
    """A standalone page around ``body``, styled for reading in the report's frame (tables scroll
    sideways inside it, numbers right-aligned)."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:80em;margin:1.5em auto;padding:0 1em;"
            "line-height:1.45}h1{font-size:1.4em}table{border-collapse:collapse;font-size:.85em;display:block;"
            "overflow-x:auto}td,th{border:1px solid #ccc;padding:.15em .4em;vertical-align:top;text-align:left}"
            "th{background:#f3f4f6}img{max-width:100%;height:auto;display:block;margin:.3em 0}"
            "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def markdown_to_html(text: str, title: str) -> str:
    """The Markdown ``text`` as a standalone page."""
    return html_page(title, markdown_body(text))
