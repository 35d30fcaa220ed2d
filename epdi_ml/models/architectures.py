"""The CNN architectures a model or spec may name, and the check of a name, without importing torch.

Specs, the command line and the training configuration validate ``model.arch`` here; the networks
themselves are built in :mod:`epdi_ml.models.networks`.
"""

from __future__ import annotations

from stores.errors import InputError

DEFAULT_MODEL = "densenet121"
TORCHVISION_MODELS = ("vgg19", "resnet34", "resnet101", "resnet152", "densenet121", "densenet169")
MODEL_NAMES = (*TORCHVISION_MODELS, "efficientnet_lite0", "small_cnn")

#: smallest input edge (pixels) each model accepts
MIN_PIXELS = {name: 32 for name in MODEL_NAMES} | {"small_cnn": 8}
#: models with ImageNet weights (every one but ``small_cnn``)
PRETRAINED_MODELS = tuple(name for name in MODEL_NAMES if name != "small_cnn")


def check_architecture(
    name: str, pretrained: bool, pixels: int, fields: tuple[str, str, str] = ("model", "pretrained", "pixels")
) -> None:
    """Raise :class:`~stores.errors.InputError` unless model ``name`` can be built as asked.

    Parameters
    ----------
    name, pretrained, pixels
        Architecture, whether it starts from ImageNet weights, input edge in pixels.
    fields
        How the caller names these three (``("model.arch", "model.pretrained", "model.pixels")`` for
        a campaign spec, ``("--model", "--pretrained", "--pixels")`` on the command line).
    """
    arch, pre, px = fields
    if name not in MODEL_NAMES:
        raise InputError(f"unknown {arch} {name!r}; accepted: {', '.join(MODEL_NAMES)}")
    if pretrained and name not in PRETRAINED_MODELS:
        off = "--no-pretrained" if pre.startswith("--") else f"{pre}: false"
        raise InputError(
            f"{arch} {name!r} has no pretrained weights; give {off}, or one of {', '.join(PRETRAINED_MODELS)}"
        )
    if pixels < MIN_PIXELS[name]:
        raise InputError(
            f"{px} {pixels} is too small for {name}; accepted: at least {MIN_PIXELS[name]} pixels"
        )
