"""Fragments are kept per colour scale: two datasets (two campaigns) over the same surfaces."""

import pytest
from store_helpers import synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.fragments import colour_scales
from epdi_ml.training.store_data import NoFragments, load_fragments
from workflows.cli.app import app


def test_a_second_dataset_over_the_same_surfaces_keeps_both_sets():
    facade, ids = synthetic_fragment_store(["Zn", "Al"], pixels=16, dataset="first")
    n = facade.count("fragments")
    built = CliRunner().invoke(app, ["fragments", "build", "--all", "--pixels", "16", "--dataset", "second"])
    assert built.exit_code == 0, built.output
    assert facade.count("fragments") == 2 * n
    first, second = load_fragments(facade, "first"), load_fragments(facade, "second")
    assert len(first.docs) == len(second.docs) == n
    assert {d["colour_scale_id"] for d in second.docs} == {colour_scales.scale_id("second")}
    assert {d["fragment_id"] for d in first.docs}.isdisjoint(d["fragment_id"] for d in second.docs)
    # recutting one dataset replaces only its own fragments
    again = CliRunner().invoke(app, ["fragments", "build", "--all", "--pixels", "16", "--dataset", "second"])
    assert again.exit_code == 0 and facade.count("fragments") == 2 * n
    with pytest.raises(NoFragments, match="2 colour scales .*first, second"):
        load_fragments(facade)
