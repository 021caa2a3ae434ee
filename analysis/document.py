"""The report as a document: `Report` (headings, paragraphs, lists, `Table`s, figures) written
as Markdown or one self-contained HTML page, and the cell formats every section uses (numbers,
mean ± sd, intervals, percentages). Knows nothing of the search: the sections
(`analysis.sections`, `analysis.joint`) fill it, `analysis.report` writes it.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

from tune_vqvae.stats.intervals import Interval


def num(v, spec=".4g", none="–") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def pm(mean, std, n=None, spec=".4g") -> str:
    s = num(mean, spec)
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {num(std, spec)}"
    if n is not None and not (isinstance(n, float) and math.isnan(n)) and n > 1:
        s += f" (n={int(n)})"
    return s


def iv(i: Interval | None, spec=".4g", sign="") -> str:
    """An estimate with its interval: -1.2 [-3.4, 0.95]."""
    if i is None:
        return "–"
    return f"{i.estimate:{sign}{spec}} [{i.low:{sign}{spec}}, {i.high:{sign}{spec}}]"


def times(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}×"


def pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1f}%"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    def markdown(self) -> str:
        def cell(s):
            return str(s).replace("|", "\\|").replace("\n", " ")
        out = ["| " + " | ".join(self.columns) + " |",
               "|" + "|".join("---" for _ in self.columns) + "|"]
        out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.rows]
        if not self.rows:
            out.append("| " + " | ".join(["(none)"] + [""] * (len(self.columns) - 1)) + " |")
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                       for r in self.rows) or \
            f"<tr><td colspan='{len(self.columns)}'>(none)</td></tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Report:
    title: str
    blocks: list = field(default_factory=list)  # ("h", text) ("p", text) ("t", Table) ("img", name)
    figures: dict[str, bytes] = field(default_factory=dict)

    def h(self, text):
        self.blocks.append(("h", text))

    def p(self, text):
        self.blocks.append(("p", text))

    def ul(self, items):
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, t: Table):
        self.blocks.append(("t", t))

    def figure(self, name: str, png: bytes, alt: str):
        self.figures[name] = png
        self.blocks.append(("img", (name, alt)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, x in self.blocks:
            if kind == "h":
                out += [f"## {x}", ""]
            elif kind == "p":
                out += [x, ""]
            elif kind == "ul":
                out += [f"- {i}" for i in x] + [""]
            elif kind == "t":
                if x.title:
                    out += [f"**{x.title}**", ""]
                out += [x.markdown(), ""]
                if x.caption:
                    out += [f"_{x.caption}_", ""]
            elif kind == "img":
                out += [f"![{x[1]}]({x[0]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, x in self.blocks:
            if kind == "h":
                parts.append(f"<h2>{html.escape(x)}</h2>")
            elif kind == "p":
                parts.append(f"<p>{_inline(x)}</p>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in x) + "</ul>")
            elif kind == "t":
                if x.title:
                    parts.append(f"<h3>{html.escape(x.title)}</h3>")
                parts.append(x.html())
                if x.caption:
                    parts.append(f"<p class='caption'>{_inline(x.caption)}</p>")
            elif kind == "img":
                data = base64.b64encode(self.figures[x[0]]).decode()
                parts.append(f"<figure><img alt='{html.escape(x[1])}' "
                             f"src='data:image/png;base64,{data}'><figcaption>"
                             f"{html.escape(x[1])}</figcaption></figure>")
        return HTML_PAGE.format(title=html.escape(self.title), body="\n".join(parts))


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** in a paragraph, for the HTML page."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
th {{ background: #f2f2f2; }}
tr:nth-child(even) td {{ background: #fafafa; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption, .caption {{ color: #555; font-size: 0.9em; }}
code {{ background: #f4f4f4; padding: 0 3px; }}
</style></head><body>
{body}
</body></html>
"""
