"""The HTML page of a report: headings, paragraphs, notes, figures and tables, escaped, no assets."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
th { background: #eee; }
td.num { text-align: right; font-family: monospace; }
p.note { background: #fff6d5; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 36em; }
figcaption { font-size: 0.8em; color: #555; max-width: 36em; }
"""


def esc(value: object) -> str:
    """HTML-escaped text of ``value`` (``-`` for None)."""
    return html.escape("-" if value is None else str(value))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{esc(value)}</td>"


def flatten(spec: dict, prefix: str = "") -> list[dict]:
    """Nested settings as ``setting``/``value`` rows, dotted names, lists joined by commas."""
    rows = []
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        else:
            rows.append(
                {
                    "setting": name,
                    "value": value if not isinstance(value, list) else ", ".join(map(str, value)),
                }
            )
    return rows


@dataclass
class Page:
    """The HTML being assembled, the figures it shows and the notes it leaves."""

    out_dir: Path
    parts: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        """A heading (level 2 by default)."""
        self.parts.append(f"<h{level}>{esc(text)}</h{level}>")

    def para(self, text: str) -> None:
        """A paragraph of escaped text."""
        self.parts.append(f"<p>{esc(text)}</p>")

    def note(self, text: str) -> None:
        """A highlighted note, also kept in ``notes``."""
        self.notes.append(text)
        self.parts.append(f'<p class="note">{esc(text)}</p>')

    def figure(self, path: Path, caption: str) -> None:
        """A figure linked by file name with its caption."""
        self.figures.append(path)
        self.parts.append(
            f'<figure><img src="{esc(path.name)}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )

    def table(self, rows: list[dict], columns: list[str] | tuple[str, ...]) -> None:
        """A table of ``rows`` (dicts) with ``columns``; floats to 4 decimals."""
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def raw(self, markup: str) -> None:
        """Markup written as is (the caller escapes)."""
        self.parts.append(markup)

    def html(self, title: str) -> str:
        """The whole page."""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )
