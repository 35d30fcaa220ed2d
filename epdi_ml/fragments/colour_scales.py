"""The colour scale of a dataset: one potential range (eV) that every fragment image of it is coloured on.

A dataset (a campaign, a packaged set) keeps one :class:`stores.schemas.fragments.ColourScaleDoc`:
chosen once to cover the potential maps it starts with (plus a margin), never changed unless asked,
so that images of surfaces added later stay comparable with those a model was trained on.
"""

from __future__ import annotations

import numpy as np

from epdi_ml.fragments.crops import ColourScale
from epdi_ml.fragments.errors import MissingInputError
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.fragments import ColourScaleDoc, PotentialMapDoc

#: name of the dataset whose colour scale is used when none is given
DEFAULT_DATASET = "default"

#: margin added on both sides of the map range when a colour scale is chosen (fraction of range)
SCALE_MARGIN = 0.02


def scale_id(dataset: str) -> str:
    """Id of a dataset's colour scale document."""
    return stable_id("cscale", dataset=dataset)


def get_colour_scale(facade: StoreFacade, dataset: str = DEFAULT_DATASET) -> ColourScaleDoc | None:
    """The stored colour scale of ``dataset``, or ``None``."""
    docs = facade.query("colour_scales", {"scale_id": scale_id(dataset)})
    return ColourScaleDoc(**docs[0]) if docs else None


def choose_colour_scale(
    facade: StoreFacade,
    new_maps: list[PotentialMapDoc],
    dataset: str = DEFAULT_DATASET,
    rescale: bool = False,
    cmap: str = "viridis",
) -> tuple[ColourScaleDoc, bool]:
    """The dataset's colour scale: the stored one, or a new one covering the maps.

    A stored scale is never changed unless ``rescale`` is set; then it covers every stored map
    and ``new_maps``. Returns the document and whether it was (re)created.
    """
    stored = get_colour_scale(facade, dataset)
    if stored is not None and not rescale:
        return stored, False
    ranges = [(m.min_ev, m.max_ev) for m in new_maps]
    if rescale:
        ranges += [
            (d["min_ev"], d["max_ev"])
            for d in facade.query("potential_maps", properties=["min_ev", "max_ev"])
        ]
    if not ranges:
        raise MissingInputError("no potential maps to choose a colour scale from")
    scale = ColourScale.covering(np.array(ranges), cmap=stored.cmap if stored else cmap, margin=SCALE_MARGIN)
    doc = ColourScaleDoc(
        scale_id=scale_id(dataset),
        dataset=dataset,
        vmin_ev=round(scale.vmin_ev, 6),
        vmax_ev=round(scale.vmax_ev, 6),
        cmap=scale.cmap,
        source=f"range of {len(ranges)} potential maps (+{SCALE_MARGIN:.0%} margin)"
        + (", rescaled on request" if rescale else ""),
    )
    facade.upsert("colour_scales", [doc])
    return doc, True
