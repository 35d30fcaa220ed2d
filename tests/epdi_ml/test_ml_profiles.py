import math

import pytest

from epdi_ml.profiles import (
    PathSite,
    build_profile,
    learning_curves_plot,
    mix_labels_and_predictions,
    parity_plot,
    plot_profiles,
)


def _path():
    # vp 3.00 -> sp 2.60 -> vp 3.10 -> sp 2.50 -> vp 2.90 (E_b, eV)
    return [
        PathSite(site_id="v0", kind="valley", binding_energy_ev=3.00),
        PathSite(site_id="s0", kind="saddle", binding_energy_ev=2.60, std_ev=0.03, source="predicted"),
        PathSite(site_id="v1", kind="valley", binding_energy_ev=3.10),
        PathSite(site_id="s1", kind="saddle", binding_energy_ev=2.50, std_ev=0.04, source="predicted"),
        PathSite(site_id="v2", kind="valley", binding_energy_ev=2.90),
    ]


def test_profile_barrier_arithmetic():
    profile = build_profile(_path())
    assert profile.energies_ev == pytest.approx([0.0, 0.40, -0.10, 0.50, 0.10])
    assert profile.energy_std_ev == pytest.approx([0.0, 0.03, 0.0, 0.04, 0.0])
    local = profile.local_barriers
    assert [b.barrier_ev for b in local] == pytest.approx([0.40, 0.60])
    assert [b.std_ev for b in local] == pytest.approx([0.03, 0.04])
    # highest rise: from v1 (E=-0.10) up to s1 (E=0.50)
    gb = profile.global_barrier
    assert gb.barrier_ev == pytest.approx(0.60)
    assert (gb.start_index, gb.top_index) == (2, 3)
    assert gb.std_ev == pytest.approx(0.04)


def test_uncertainty_of_start_propagates():
    sites = _path()
    sites[0] = PathSite(site_id="v0", kind="valley", binding_energy_ev=3.0, std_ev=0.03, source="predicted")
    profile = build_profile(sites)
    assert profile.energy_std_ev[1] == pytest.approx(math.hypot(0.03, 0.03))
    assert profile.local_barriers[0].std_ev == pytest.approx(math.hypot(0.03, 0.03))


def test_path_must_alternate():
    sites = _path()
    sites[1], sites[2] = sites[2], sites[1]
    with pytest.raises(ValueError, match="alternate"):
        build_profile(sites)


def test_mix_labels_and_predictions():
    sites = mix_labels_and_predictions(
        ["v0", "s0", "v1"], ["valley", "saddle", "valley"], {"v0": 3.0, "v1": 3.1}, {"s0": (2.6, 0.02)}
    )
    assert [s.source for s in sites] == ["dft", "predicted", "dft"]
    assert sites[1].std_ev == 0.02
    with pytest.raises(KeyError, match="neither"):
        mix_labels_and_predictions(["v9"], ["valley"], {}, {})


def test_plots_write_png(tmp_path):
    dft = build_profile(_path())
    predicted = build_profile(
        [s.model_copy(update={"binding_energy_ev": s.binding_energy_ev + 0.01}) for s in _path()]
    )
    for path in (
        plot_profiles(tmp_path / "profile.png", predicted, dft),
        parity_plot(tmp_path / "parity.png", [2.5, 2.6, 2.7], [2.52, 2.58, 2.75], [0.01, 0.02, 0.01]),
        learning_curves_plot(tmp_path / "curves.png", [[0.5, 0.3, 0.2]], [[0.6, 0.4, 0.35]]),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
