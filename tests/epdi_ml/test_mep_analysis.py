"""MEP correlations: Pearson R, N_ve, rows joined from the store, figures."""

import numpy as np
import pytest

from epdi_ml.fragments.mep_analysis import (
    NoBindingEnergies,
    collect_rows,
    correlations,
    n_valence,
    pearson_r,
    plot_mep_vs_eb,
    plot_nve_mep_vs_eb,
)
from stores.facade import StoreFacade


def test_n_valence_table():
    table = {"Al": 3, "Co": 9, "Cr": 6, "Cu": 11, "Fe": 8, "Mn": 7, "Ni": 10, "V": 5, "Zn": 12}
    assert {el: n_valence(el) for el in table} == table
    assert (n_valence("Mo"), n_valence("Ti"), n_valence("Ta")) == (6, 4, 5)


def test_pearson_r():
    x = np.arange(10.0)
    assert pearson_r(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson_r(x, -x) == pytest.approx(-1.0)
    assert pearson_r([1, 2], [3, 4]) is None
    assert pearson_r([1, 1, 1], [1, 2, 3]) is None
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    z = y + rng.normal(size=50)
    assert pearson_r(y, z) == pytest.approx(np.corrcoef(y, z)[0, 1])


def _rows():
    rng = np.random.default_rng(1)
    rows = []
    for group in ("VIB", "IVB"):
        for dopant in ("Co", "Al", "V", "pristine"):
            for kind in ("valley", "saddle"):
                for _ in range(5):
                    mep = rng.uniform(-3, -2)
                    n_ve = 6 if dopant == "pristine" else n_valence(dopant)
                    eb = 1.5 * mep + 7.0 + 0.01 * rng.normal() + (1.0 if dopant in ("Al", "V") else 0.0)
                    rows.append(
                        {
                            "kind": kind,
                            "group": group,
                            "dopant_label": dopant,
                            "n_ve": n_ve,
                            "mep_ev": mep,
                            "eb_ev": eb,
                            "nve_mep": n_ve * mep,
                        }
                    )
    return rows


def test_correlations_structure(tmp_path):
    rows = _rows()
    result = correlations(rows)
    assert result["n_rows"] == len(rows)
    assert set(result["mep"]) == {"valley", "saddle"}
    assert set(result["mep"]["saddle"]["by_group"]) == {"VIB", "IVB"}
    assert result["mep"]["saddle"]["by_dopant"]["Co"]["r"] > 0.99
    assert result["mep"]["valley"]["by_dopant"]["Co"]["n"] == 10
    assert result["nve_mep"]["both"]["without_Al_V"]["n"] == len(rows) // 2
    paths = [plot_mep_vs_eb(rows, tmp_path / "a.png"), plot_nve_mep_vs_eb(rows, tmp_path / "b.png")]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_collect_rows_without_anything_says_what_to_run():
    with pytest.raises(NoBindingEnergies, match="fragments build"):
        collect_rows(StoreFacade())
