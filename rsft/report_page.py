"""One report, two renderings: Markdown (images as files beside it) and one self-contained HTML page (images
embedded as data URIs, so the page opens from disk, mailed or moved, with nothing else)."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left}th{background:#f2f2f2}.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4em .8em;margin:.4em 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;color:#555;margin-bottom:1.4em}
code{background:#f5f5f5;padding:0 3px}"""


# a number, a number ± its error, a number [its interval], an interval alone, a duration h:mm:ss:
# "16.0 [9.4, 24.7]", "16.0 [9.4, 24.7] n=100", "+3.1", "45", "[+0.5, +2.0]", "0:07:12"
NUMBER = re.compile(r"[−+-]?\d[\d,]*(\.\d+)?%?( ± \d+(\.\d+)?)?( \[[−+-]?[\d.]+, [−+-]?[\d.]+\])?( n=\d+)?"
                    r"|\[[−+-]?[\d.]+, [−+-]?[\d.]+\]|\d+:\d\d:\d\d")
EMPTY = {"", "—"}


def numeric_columns(rows: list[list[str]]) -> list[bool]:
    """Per column: True when every filled cell is a number (right-aligned, so digits line up), else text (left)."""
    columns = list(zip(*rows)) if rows else []
    return [any(c not in EMPTY for c in col) and all(c in EMPTY or NUMBER.fullmatch(c) for c in col)
            for col in columns]


class Page:
    """Blocks in order: headings, paragraphs, warnings, tables and images."""

    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def warning(self, text: str) -> None:
        self.blocks.append(("warning", text))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", header, [[str(c) for c in row] for row in rows]))

    def image(self, path: Path, caption: str) -> None:
        self.blocks.append(("image", Path(path), caption))

    def markdown(self) -> str:
        out = [f"# {self.title}\n"]
        for kind, *args in self.blocks:
            if kind == "heading":
                out.append(f"{'#' * args[0]} {args[1]}\n")
            elif kind == "text":
                out.append(f"{args[0]}\n")
            elif kind == "warning":
                out.append(f"> **Warning:** {args[0]}\n")
            elif kind == "table":
                header, rows = args
                cell = lambda c: c.replace("|", "\\|")  # noqa: E731
                align = numeric_columns(rows) or [False] * len(header)
                lines = ["| " + " | ".join(map(cell, header)) + " |",
                         "|" + "".join("---:|" if num else ":---|" for num in align)]
                lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
                out.append("\n".join(lines) + "\n")
            elif kind == "image":
                out.append(f"![{args[1]}]({args[0].name})\n\n*{args[1]}*\n")
        return "\n".join(out)

    def html(self) -> str:
        def e(text: str) -> str:  # escaped, with `code` spans kept
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>",
               f"<style>{CSS}</style></head><body><h1>{e(self.title)}</h1>"]
        for kind, *args in self.blocks:
            if kind == "heading":
                out.append(f"<h{args[0]}>{e(args[1])}</h{args[0]}>")
            elif kind == "text":
                out.append(f"<p>{e(args[0])}</p>")
            elif kind == "warning":
                out.append(f"<p class='warn'><b>Warning:</b> {e(args[0])}</p>")
            elif kind == "table":
                header, rows = args
                align = [" class='num'" if num else "" for num in numeric_columns(rows) or [False] * len(header)]
                out.append("<table><tr>" + "".join(f"<th{a}>{e(h)}</th>" for h, a in zip(header, align)) + "</tr>")
                out += ["<tr>" + "".join(f"<td{a}>{e(c)}</td>" for c, a in zip(row, align)) + "</tr>" for row in rows]
                out.append("</table>")
            elif kind == "image":
                data = base64.b64encode(args[0].read_bytes()).decode()
                out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{e(args[1])}'>"
                           f"<figcaption>{e(args[1])}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out)
