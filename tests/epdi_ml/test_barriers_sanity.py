"""One barrier vocabulary (forward, reverse, local, global) and CINEB sanity flags, constructed cases."""

import pytest

from epdi_ml.analysis.barriers import global_barrier, hop_barriers, local_barrier_ev, neb_barriers
from epdi_ml.analysis.sanity import endpoint_dips_ev, neb_flags, neb_issue


def test_hop_barriers_from_binding_energies():
    # E_b: T_M valley 3.00, H valley 2.90, saddle 2.80 -> E = -E_b: T_M lowest
    b = hop_barriers(tm_eb_ev=3.00, h_eb_ev=2.90, saddle_eb_ev=2.80)
    assert (b.forward_barrier_ev, b.reverse_barrier_ev) == pytest.approx((0.20, 0.10))
    assert b.local_barrier_ev == pytest.approx(0.20)  # from the lower valley (T_M here)
    assert local_barrier_ev(2.90, 3.00, 2.80) == pytest.approx(0.20)  # ... or H, whichever binds more


def test_neb_barriers_read_the_images_like_the_labels():
    images = [-10.00, -9.90, -9.80, -9.95]  # first = T_M end, last = H end (eV)
    b = neb_barriers(images)
    values = (b.forward_barrier_ev, b.reverse_barrier_ev, b.local_barrier_ev)
    assert values == pytest.approx((0.20, 0.15, 0.20))
    # the same hop from binding energies: E_b = -E + const
    same = hop_barriers(tm_eb_ev=10.00, h_eb_ev=9.95, saddle_eb_ev=9.80)
    assert same.model_dump() == pytest.approx(b.model_dump())
    with pytest.raises(ValueError):
        neb_barriers([0.0])


def test_global_barrier_is_the_highest_rise():
    assert global_barrier([0.0, 0.4, -0.1, 0.5, 0.1]) == pytest.approx((0.6, 2, 3))
    assert global_barrier([0.3, 0.2, 0.1]) == (0.0, 0, 0)  # only descends


def _neb(images, converged=True, fmax=0.03):
    return {"image_energies_ev": images, "converged": converged, "fmax_ev_ang": fmax}


def test_an_image_below_its_end_point_marks_the_end_point():
    # the reference set's WS2-Ni hop-caf348ac6b1008d8: image 3 lies 0.085 eV below the H end point
    double_hump = [0.0, 0.102, 0.211, 0.087, 0.172]
    assert endpoint_dips_ev(double_hump) == pytest.approx((0.0, 0.085))
    assert neb_flags(_neb(double_hump)) == ["endpoint_not_minimum"]
    (issue,) = neb_issue(_neb(double_hump))
    assert "0.085 eV below the H end point" in issue
    assert endpoint_dips_ev([0.05, -0.02, 0.2, 0.1, 0.0]) == pytest.approx((0.07, 0.0))  # T_M side
    # images on the way up from the lower end are below the higher end point: no flag
    rising = [0.0, 0.083, 0.161, 0.194, 0.119]
    assert endpoint_dips_ev(rising) == (0.0, 0.0) and neb_flags(_neb(rising)) == []
    assert neb_flags(_neb([0.0, -0.0005, 0.1, 0.3, 0.0])) == []  # 0.5 meV below: within the tolerance


def test_unconverged_cineb_is_flagged_with_its_force():
    neb = _neb([0.0, 0.2, 0.1], converged=False, fmax=0.108)
    assert neb_flags(neb) == ["cineb_unconverged"]
    assert neb_issue(neb) == ["CINEB not converged (fmax 0.108 eV/Angstrom)"]
