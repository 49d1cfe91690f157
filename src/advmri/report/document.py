"""A report as a list of blocks, rendered to one self-contained HTML page and to Markdown.

HTML embeds every PNG as base64 so ``report.html`` can be mailed or archived alone; Markdown links
the PNGs relative to its own folder.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

P_COLUMNS_SUFFIXES = ("_p", "p_adj")


@dataclass
class Block:
    """One piece of the report: ``kind`` is heading, text, warning, table or figure."""

    kind: str
    text: str = ""
    table: pd.DataFrame | None = None
    path: Path | None = None
    level: int = 2


def format_p(p: float) -> str:
    """A p-value in two significant digits; below 1e-16 (double precision) as ``<1e-16``."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 1e-16:
        return "<1e-16"
    return f"{p:.2g}"


def format_cell(column: str, value: object) -> str:
    """Text of one table cell: p-values by ``format_p``, other floats to 4 significant digits."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        if column == "p" or column.endswith(P_COLUMNS_SUFFIXES):
            return format_p(float(value))
        return f"{float(value):.4g}"
    return str(value)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, cell by cell, as both renderers print it."""
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        out[str(column)] = [format_cell(str(column), v) for v in table[column].tolist()]
    return out


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``)."""
    text = formatted(table)
    header = "| " + " | ".join(text.columns) + " |"
    rule = "|" + "|".join("---" for _ in text.columns) + "|"
    lines = [
        "| " + " | ".join(v.replace("|", "\\|") for v in row) + " |"
        for row in text.itertuples(index=False)
    ]
    return "\n".join([header, rule, *lines])


def html_table(table: pd.DataFrame) -> str:
    text = formatted(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in text.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in text.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
.warning { background: #fde2e1; border: 2px solid #c0392b; padding: 0.8em 1em; font-weight: bold;
           color: #7b241c; margin: 1em 0; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
"""


def render_html(title: str, blocks: list[Block]) -> str:
    """The blocks as one HTML page with every figure embedded."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for block in blocks:
        if block.kind == "heading":
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif block.kind == "text":
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif block.kind == "warning":
            parts.append(f'<div class="warning">{html.escape(block.text)}</div>')
        elif block.kind == "table":
            if block.text:
                parts.append(f"<p><em>{html.escape(block.text)}</em></p>")
            parts.append(html_table(block.table))
        elif block.kind == "figure":
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(block.path.name)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(block.text)}</figcaption></figure>"
            )
        else:
            raise ValueError(f"unknown block kind {block.kind!r}")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, blocks: list[Block], folder: Path) -> str:
    """The blocks as Markdown; figures link to their PNGs relative to ``folder``."""
    parts = [f"# {title}", ""]
    for block in blocks:
        if block.kind == "heading":
            parts += ["#" * block.level + " " + block.text, ""]
        elif block.kind == "text":
            parts += [block.text, ""]
        elif block.kind == "warning":
            parts += [f"> **WARNING: {block.text}**", ""]
        elif block.kind == "table":
            if block.text:
                parts += [f"*{block.text}*", ""]
            parts += [markdown_table(block.table), ""]
        elif block.kind == "figure":
            link = Path(os.path.relpath(block.path, folder)).as_posix()
            parts += [f"![{block.path.stem}]({link})", "", f"*{block.text}*", ""]
        else:
            raise ValueError(f"unknown block kind {block.kind!r}")
    return "\n".join(parts)
