"""Fragments and their labels from the store, as :class:`epdi_ml.training.FragmentData`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epdi_ml.analysis.labels import LabelSet, class_labels, label_set, site_class_labels
from epdi_ml.training.data import FragmentData
from stores.arrays import get_array
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.schemas.fields import ArrayRef


class NoFragments(InputError, LookupError):
    """The store holds no fragments (or none labelled) for the request."""


@dataclass
class StoreFragments:
    """Every fragment of a dataset with its document, and labels where computed (NaN elsewhere)."""

    data: FragmentData
    docs: list[dict]
    labels: LabelSet | None = None

    @property
    def labelled(self) -> np.ndarray:
        """Indices of fragments with an E_b label."""
        return np.flatnonzero(~np.isnan(self.data.energies_ev))


def load_fragments(
    facade: StoreFacade,
    dataset: str | None = None,
    source: str | None = None,
    surfaces: list[str] | None = None,
    distinct_only: bool = False,
) -> StoreFragments:
    """Load RGB fragments, kinds, surfaces and E_b labels (eV) from the store.

    Parameters
    ----------
    facade
        The store.
    dataset
        Colour-scale dataset name (``None``: every fragment).
    source
        The label source: an engine name, a source from :func:`epdi_ml.analysis.labels.label_source`, or
        ``None`` for the only one in the store (labels of two sources are never mixed:
        :class:`epdi_ml.analysis.labels.MixedLabels`).
    surfaces
        Only these surface ids.
    distinct_only
        Only the representative fragment of each symmetry class. Training uses these: an
        equivalent fragment is the same image up to a site symmetry, so splitting duplicates
        between training and test sets would leak labels.
    """
    criteria: dict = {}
    if surfaces:
        criteria["surface_id"] = {"$in": surfaces}
    docs = facade.query("fragments", criteria)
    if dataset is not None:
        scale_ids = {d["scale_id"] for d in facade.query("colour_scales", {"dataset": dataset})}
        docs = [d for d in docs if d["colour_scale_id"] in scale_ids]
    scales = {d["colour_scale_id"] for d in docs}
    if dataset is None and len(scales) > 1:
        stored = facade.query("colour_scales", {"scale_id": {"$in": list(scales)}})
        names = sorted(d["dataset"] for d in stored)
        raise NoFragments(
            f"the fragments are cut on {len(scales)} colour scales (datasets {', '.join(names)}); "
            "name the dataset (e.g. --dataset NAME)"
        )
    if distinct_only:
        docs = [d for d in docs if d["is_representative"]]
    if not docs:
        raise NoFragments(
            "no fragments in the store: run `epdi static` and `epdi fragments build --all` first"
        )
    docs.sort(key=lambda d: (d["surface_id"], d["kind"], d["site_index"]))
    stacks: dict[str, np.ndarray] = {}
    for doc in docs:
        key = doc["rgb"]["key"]
        if key not in stacks:
            stacks[key] = get_array(facade, ArrayRef(**doc["rgb"]))
    images = np.stack([stacks[d["rgb"]["key"]][d["stack_index"]] for d in docs]).astype(np.uint8)
    found = label_set(facade, source, surfaces)
    labels = class_labels(docs, found.energies_ev)
    energies = np.array([labels.get(d["site_id"], np.nan) for d in docs], dtype=float)
    data = FragmentData(
        images=images,
        energies_ev=energies,
        kinds=np.array([d["kind"] for d in docs]),
        surface_ids=np.array([d["surface_id"] for d in docs]),
        ids=np.array([d["site_id"] for d in docs]),
        anchors_ev=valley_anchors(facade, docs, found.energies_ev),
    )
    return StoreFragments(data=data, docs=docs, labels=found)


def valley_anchors(facade: StoreFacade, docs: list[dict], computed: dict[str, float]) -> np.ndarray:
    """Per fragment the mean labelled E_b (eV) of its hop's two valleys (NaN for valleys and gaps).

    The anchor of a valley-anchored model (:meth:`epdi_ml.training.data.FragmentData.offsets_ev`);
    valley labels reach every valley of their symmetry class (:func:`site_class_labels`).
    """
    surfaces = sorted({d["surface_id"] for d in docs})
    labels = site_class_labels(facade, surfaces, computed)
    hops = facade.query("hops", {"surface_id": {"$in": surfaces}}, properties=["saddle_id", "valley_ids"])
    ends = {h["saddle_id"]: h["valley_ids"] for h in hops}
    anchors = np.full(len(docs), np.nan)
    for i, doc in enumerate(docs):
        valleys = [labels.get(v) for v in ends.get(doc["site_id"], ())] if doc["kind"] == "saddle" else []
        if len(valleys) == 2 and None not in valleys:
            anchors[i] = float(np.mean(valleys))
    return anchors
