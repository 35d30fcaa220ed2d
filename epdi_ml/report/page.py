"""The HTML page of a report: headings, paragraphs, notes, figures and tables, rendered by a template.

:class:`Page` collects blocks; :meth:`Page.html` renders them through the jinja2 template
``epdi_ml/report/templates/report.html.j2`` with autoescaping on (every text is escaped, nothing is markup).
Tables show human headers (:data:`HEADERS`, field names elsewhere) and sit in a horizontally scrollable
container whose cells wrap; a missing value shows as :data:`MISSING` (an en dash), a missing dopant as
``pristine``. The page links its figures by file name and loads nothing from the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2

#: how a missing value (None) shows in the page
MISSING = "\N{EN DASH}"

#: how a surface without a dopant shows in the page
PRISTINE = "pristine"

#: human column headers of the report's tables, by field name (units in parentheses)
HEADERS = {
    "surface": "surface",
    "surface_id": "surface id",
    "host": "host",
    "dopant": "dopant",
    "n_labelled_hops": "labelled distinct hops",
    "n_distinct_hops": "distinct hops",
    "global_barrier_labels_ev": "global barrier, labels only (eV)",
    "global_barrier_ev": "global barrier (eV)",
    "global_barrier_ci68_ev": "global barrier 68 % half-width (eV)",
    "global_barrier_ci90_ev": "global barrier 90 % half-width (eV)",
    "global_barrier_model_ev": "global barrier, model only (eV)",
    "path_deg": "worst path (deg)",
    "n_sites_predicted": "sites predicted",
    "n_flagged_hops": "flagged distinct hops",
    "flags": "flags",
    "hop_id": "hop id",
    "source": "source",
    "forward_barrier_ev": "forward barrier (eV)",
    "reverse_barrier_ev": "reverse barrier (eV)",
    "local_barrier_ev": "local barrier (eV)",
    "local_ci68_ev": "local barrier 68 % half-width (eV)",
    "local_ci90_ev": "local barrier 90 % half-width (eV)",
    "flag": "flag",
    "distinct hops": "distinct hops",
    "meaning": "meaning",
    "round": "round",
    "strategy": "strategy",
    "n_labelled": "labelled hops",
    "n_selected": "selected hops",
    "fraction_labelled": "fraction of distinct hops labelled",
    "model_id": "model",
    "cv_mae_ev": "CV MAE (eV)",
    "max_spread_ev": "largest spread (eV)",
    "mean_spread_ev": "mean spread (eV)",
    "wall_time_s": "wall time (s)",
    "stop_reason": "stop reason",
    "item": "item",
    "setting": "setting",
    "value": "value",
}


def header(name: str) -> str:
    """The human header of a field: :data:`HEADERS`, else the name with spaces and its unit."""
    if name in HEADERS:
        return HEADERS[name]
    for suffix, unit in (("_ev", " (eV)"), ("_ang", " (Angstrom)"), ("_s", " (s)"), ("_deg", " (deg)")):
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + unit
    return name.replace("_", " ")


def cell(value: object, column: str = "") -> tuple[str, str]:
    """Text and CSS class of a table cell in ``column``.

    :data:`MISSING` for None, floats to 4 decimals (angles in ``*_deg`` columns to whole degrees),
    ids in ``*_id`` columns in small monospace, the ``surface`` name on one line.
    """
    if value is None:
        return MISSING, "empty"
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, float):
        return (f"{value:.0f}" if column.endswith("_deg") else f"{value:.4f}"), "num"
    if isinstance(value, int):
        return str(value), "num"
    if column.endswith("_id"):
        return str(value), "id"
    return str(value), "name" if column == "surface" else ""


def flatten(spec: dict, prefix: str = "") -> list[dict]:
    """Nested settings as ``setting``/``value`` rows, dotted names, lists joined by commas.

    A ``None`` among ``dopants`` shows as ``pristine``, as the spec spells it.
    """
    rows = []
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
            continue
        if isinstance(value, list):
            empty = PRISTINE if key == "dopants" else MISSING
            value = ", ".join(empty if v is None else str(v) for v in value)
        rows.append({"setting": name, "value": value})
    return rows


#: folder of the report's jinja2 templates
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        # the folder beside this module (shipped as package data): found the same way in an editable
        # checkout, an installed wheel and under a test runner that puts another epdi_ml on sys.path
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def _anchor(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


@dataclass
class Page:
    """The blocks of the page being assembled, the figures it shows and the notes it leaves."""

    out_dir: Path
    blocks: list[dict] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _anchors: set[str] = field(default_factory=set, repr=False)

    def heading(self, text: str, level: int = 2, detail: str | None = None) -> None:
        """A heading (level 2 by default, listed in the page's contents); ``detail`` in small text."""
        anchor = _anchor(text, self._anchors)
        self.blocks.append(
            {"kind": "heading", "level": level, "text": text, "detail": detail, "anchor": anchor}
        )

    def para(self, text: str, lead: bool = False) -> None:
        """A paragraph (``lead``: the page's opening summary)."""
        self.blocks.append({"kind": "para", "text": text, "css": "lead" if lead else ""})

    def note(self, text: str) -> None:
        """A highlighted note, also kept in ``notes``."""
        self.notes.append(text)
        self.blocks.append({"kind": "note", "text": text})

    def figure(self, path: Path, caption: str, small: bool = False) -> None:
        """A figure linked by file name with its caption.

        Figures in a row share lines, ``small`` ones (4 inch wide, three a line) apart from the others
        (6 inch wide, two a line): a change of size starts a new row.
        """
        self.figures.append(path)
        item = {"src": path.name, "caption": caption}
        last = self.blocks[-1] if self.blocks else {}
        if last.get("kind") == "figures" and last["small"] == small:
            last["figs"].append(item)
        else:
            self.blocks.append({"kind": "figures", "figs": [item], "small": small})

    def table(
        self, rows: list[dict], columns: list[str] | tuple[str, ...], headers: dict[str, str] | None = None
    ) -> None:
        """A table of ``rows`` (dicts) with ``columns``; headers from ``headers``, else :func:`header`."""
        names = headers or {}
        self.blocks.append(
            {
                "kind": "table",
                "head": [names.get(c) or header(c) for c in columns],
                "rows": [[cell(r.get(c), c) for c in columns] for r in rows],
            }
        )

    def html(self, title: str) -> str:
        """The whole page (level-2 headings make its contents line)."""
        toc = [(b["anchor"], b["text"]) for b in self.blocks if b["kind"] == "heading" and b["level"] == 2]
        return _template().render(title=title, blocks=self.blocks, toc=toc)
