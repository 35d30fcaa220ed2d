import math

import pytest

from epdi_ml.analysis.profiles import (
    PathSite,
    SitePrediction,
    build_profile,
    learning_curves_plot,
    mix_labels_and_predictions,
    parity_plot,
    plot_profiles,
)


def _saddle(site_id, eb, ci68, ci90=None, members=None):
    return PathSite(
        site_id=site_id,
        kind="saddle",
        binding_energy_ev=eb,
        ci68_ev=ci68,
        ci90_ev=ci90 if ci90 is not None else 2 * ci68,
        members_ev=members,
        source="predicted",
    )


def _path():
    # vp T_M 3.00 -> sp 2.60 -> vp H 3.10 -> sp 2.50 -> vp T_M 2.90 (E_b, eV)
    return [
        PathSite(site_id="v0", kind="valley", label="T_M", binding_energy_ev=3.00),
        _saddle("s0", 2.60, 0.03),
        PathSite(site_id="v1", kind="valley", label="H", binding_energy_ev=3.10),
        _saddle("s1", 2.50, 0.04),
        PathSite(site_id="v2", kind="valley", label="T_M", binding_energy_ev=2.90),
    ]


def test_profile_barrier_arithmetic():
    profile = build_profile(_path())
    assert profile.energies_ev == pytest.approx([0.0, 0.40, -0.10, 0.50, 0.10])
    assert profile.energy_ci68_ev == pytest.approx([0.0, 0.03, 0.0, 0.04, 0.0])
    assert profile.energy_ci90_ev == pytest.approx([0.0, 0.06, 0.0, 0.08, 0.0])
    first, second = profile.hops
    # forward = from the T_M valley, reverse = from the H valley, local = from the lower (more bound) one
    assert (first.forward.barrier_ev, first.reverse.barrier_ev) == pytest.approx((0.40, 0.50))
    assert (second.forward.barrier_ev, second.reverse.barrier_ev) == pytest.approx((0.40, 0.60))
    assert [h.local.barrier_ev for h in profile.hops] == pytest.approx([0.50, 0.60])
    assert [h.local.start_index for h in profile.hops] == [2, 2]
    assert [h.local.ci68_ev for h in profile.hops] == pytest.approx([0.03, 0.04])
    assert not any(h.saddle_below_valley for h in profile.hops)
    # highest rise: from v1 (E=-0.10) up to s1 (E=0.50)
    gb = profile.global_barrier
    assert gb.barrier_ev == pytest.approx(0.60)
    assert (gb.start_index, gb.top_index) == (2, 3)
    assert (gb.ci68_ev, gb.ci90_ev) == pytest.approx((0.04, 0.08))


def test_uncertainty_of_start_propagates_with_the_members_correlation():
    sites = _path()
    sites[0] = PathSite(
        site_id="v0", kind="valley", label="T_M", binding_energy_ev=3.0, ci68_ev=0.03, ci90_ev=0.06,
        members_ev=[2.9, 3.0, 3.1], source="predicted",
    )  # fmt: skip
    independent = build_profile(sites)
    assert independent.energy_ci68_ev[1] == pytest.approx(math.hypot(0.03, 0.03))
    assert independent.hops[0].forward.ci68_ev == pytest.approx(math.hypot(0.03, 0.03))
    # members that move together cancel in the difference, members that oppose add up
    together = list(sites)
    together[1] = _saddle("s0", 2.60, 0.03, members=[2.5, 2.6, 2.7])
    assert build_profile(together).hops[0].forward.ci68_ev == pytest.approx(0.0, abs=1e-12)
    opposed = list(sites)
    opposed[1] = _saddle("s0", 2.60, 0.03, members=[2.7, 2.6, 2.5])
    assert build_profile(opposed).hops[0].forward.ci68_ev == pytest.approx(0.06)


def test_a_saddle_above_a_valley_in_e_b_is_flagged():
    sites = _path()
    sites[3] = _saddle("s1", 2.95, 0.01)  # binds more strongly than v2 (2.90): below it in energy
    profile = build_profile(sites)
    assert [h.saddle_below_valley for h in profile.hops] == [False, True]
    assert profile.hops[1].reverse.barrier_ev == pytest.approx(0.15)
    assert profile.hops[1].forward.barrier_ev == pytest.approx(-0.05)


def test_path_must_alternate():
    sites = _path()
    sites[1], sites[2] = sites[2], sites[1]
    with pytest.raises(ValueError, match="alternate"):
        build_profile(sites)


def test_mix_labels_and_predictions():
    ids, kinds = ["v0", "s0", "v1"], ["valley", "saddle", "valley"]
    labels = {"v0": 3.0, "v1": 3.1}
    sites = mix_labels_and_predictions(ids, kinds, labels, {"s0": (2.6, 0.02)}, ["T_M", "bridge", "H"])
    assert [s.source for s in sites] == ["dft", "predicted", "dft"]
    assert [s.label for s in sites] == ["T_M", None, "H"]
    assert (sites[1].ci68_ev, sites[1].ci90_ev) == pytest.approx((0.02, 1.645 * 0.02))  # uncalibrated
    calibrated = SitePrediction(mean_ev=2.6, ci68_ev=0.02, ci90_ev=0.05, members_ev=[2.5, 2.7])
    site = mix_labels_and_predictions(ids, kinds, labels, {"s0": calibrated})[1]
    assert (site.ci68_ev, site.ci90_ev, site.members_ev) == (0.02, 0.05, [2.5, 2.7])
    with pytest.raises(KeyError, match="neither"):
        mix_labels_and_predictions(["v9"], ["valley"], {}, {})


def test_stored_predictions_read_back_calibrated_or_not():
    old = SitePrediction.from_doc({"mean_ev": 2.5, "std_ev": 0.01})
    assert not old.calibrated and (old.ci68_ev, old.ci90_ev) == pytest.approx((0.01, 0.01645))
    new = SitePrediction.from_doc(
        {"mean_ev": 2.5, "std_ev": 0.01, "ci68_ev": 0.03, "ci90_ev": 0.07, "out_of_domain": True}
    )
    assert new.calibrated and new.out_of_domain and (new.ci68_ev, new.ci90_ev) == (0.03, 0.07)


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
