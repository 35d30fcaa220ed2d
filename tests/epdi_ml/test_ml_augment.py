import numpy as np
import pytest

from epdi_ml.fragments import augment


def _sorted_pixels(image):
    return np.sort(image.reshape(-1, image.shape[-1]), axis=0)


def test_saddle_symmetry_ops_are_pixel_permutations():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    images = augment.orbit(image, "saddle")
    assert len(images) == 4
    assert not augment.needs_mask("saddle")
    for out in images:
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(_sorted_pixels(out), _sorted_pixels(image))
    np.testing.assert_array_equal(images[1], image[::-1, ::-1])  # 180 degrees
    np.testing.assert_array_equal(images[2], image[::-1])  # mirror across x
    np.testing.assert_array_equal(images[3], image[:, ::-1])  # mirror across y
    np.testing.assert_array_equal(augment.prepare(image, "saddle"), image)


def test_valley_symmetry_uses_circular_mask():
    pixels = 48
    rng = np.random.default_rng(2)
    image = rng.integers(1, 256, (pixels, pixels, 3), dtype=np.uint8)
    mask = augment.circular_mask(pixels)
    assert augment.needs_mask("valley")
    images = augment.orbit(image, "valley")
    assert len(images) == 6
    for out in images:
        assert (out[~mask] == 0).all()
    # the identity is masked too, so train and test crops look alike
    prepared = augment.prepare(image, "valley")
    np.testing.assert_array_equal(prepared[mask], image[mask])
    assert (prepared[~mask] == 0).all()


def test_valley_rotation_maps_threefold_pattern_onto_itself():
    pixels = 64
    yy, xx = np.mgrid[0:pixels, 0:pixels] - (pixels - 1) / 2
    angles = np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3
    pattern = sum(np.cos(2 * np.pi / 16 * (xx * np.cos(t) + yy * np.sin(t))) for t in angles)
    mask = augment.circular_mask(pixels)
    reference = augment.prepare(pattern, "valley")
    for out in augment.orbit(pattern, "valley"):
        err = np.abs(out - reference)[mask]
        assert err.mean() / np.ptp(pattern) < 0.02


def test_unknown_kind_rejected():
    with pytest.raises(ValueError, match="site kind"):
        augment.orbit(np.zeros((8, 8)), "hollow")
