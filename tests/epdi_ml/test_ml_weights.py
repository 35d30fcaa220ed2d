import dataclasses
import hashlib
import json

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from epdi_ml.models import weights
from epdi_ml.models.networks import build_model
from epdi_ml.models.weights import (
    KNOWN_WEIGHTS,
    MissingWeightsError,
    WeightsIntegrityError,
    load_pretrained_state_dict,
    resolve_weights_dir,
)
from workflows.cli.learn import app

runner = CliRunner()


def _legacy_densenet_keys(state):
    """Write keys the old way torchvision's first DenseNet files did (norm1 -> norm.1)."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked") and "denselayer1." in key:
            continue  # the old files predate this buffer; BatchNorm fills it in on load
        for name in ("norm1", "norm2", "relu1", "relu2", "conv1", "conv2"):
            token = f".{name}."
            if ".denselayer" in key and token in key:
                key = key.replace(token, f".{name[:-1]}.{name[-1]}.")
        out[key] = value
    return out


@pytest.fixture(scope="module")
def densenet_checkpoint(tmp_path_factory):
    """A random DenseNet121 ImageNet-shaped state dict saved under a name carrying its hash prefix."""
    folder = tmp_path_factory.mktemp("weights-src")
    torch.manual_seed(0)
    state = torchvision.models.densenet121(weights=None).state_dict()
    raw = folder / "raw.pth"
    torch.save(_legacy_densenet_keys(state), raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    path = folder / f"densenet121-{prefix}.pth"
    raw.rename(path)
    return path, prefix, state


@pytest.fixture
def cache(tmp_path, monkeypatch, densenet_checkpoint):
    """A weights cache folder holding the test checkpoint, registered as densenet121's file."""
    src, prefix, state = densenet_checkpoint
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / src.name).write_bytes(src.read_bytes())
    spec = dataclasses.replace(KNOWN_WEIGHTS["densenet121"], file=src.name, sha256_prefix=prefix)
    monkeypatch.setitem(KNOWN_WEIGHTS, "densenet121", spec)
    return folder, src.name, state


def test_table_matches_torchvision_enums():
    for name, spec in KNOWN_WEIGHTS.items():
        assert weights.name_hash_prefix(spec.file) == spec.sha256_prefix
        if spec.enum:
            enum_name, member = spec.enum.split(".")
            enum = getattr(torchvision.models, enum_name)[member]
            assert enum.url == spec.url and enum.url.endswith("/" + spec.file), name


def test_weights_load_from_cache_folder_and_rename_legacy_keys(cache):
    folder, _, state = cache
    loaded = load_pretrained_state_dict("densenet121", folder)
    assert set(loaded) <= set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    model = build_model("densenet121", pretrained=True, weights_dir=folder, in_pixels=32)
    features = model.backbone.features.state_dict()
    assert torch.equal(features["conv0.weight"], state["features.conv0.weight"])
    assert model.head.out_features == 1


def test_weights_dir_from_environment(cache, monkeypatch):
    from stores.settings import get_settings

    folder, _, _ = cache
    monkeypatch.setenv("EPDI_WEIGHTS_DIR", str(folder))
    get_settings.cache_clear()
    assert resolve_weights_dir() == folder.resolve()
    assert "features.conv0.weight" in load_pretrained_state_dict("densenet121")


def test_default_weights_dir_is_under_data_dir(data_dir, monkeypatch):
    monkeypatch.delenv("EPDI_WEIGHTS_DIR", raising=False)
    assert resolve_weights_dir() == data_dir.resolve() / "weights"


def test_missing_weights_message(tmp_path):
    folder = tmp_path / "nothing-here"
    with pytest.raises(MissingWeightsError) as info:
        build_model("densenet121", pretrained=True, weights_dir=folder, in_pixels=64)
    message = str(info.value)
    assert "densenet121-a639ec97.pth" in message
    assert str(folder) in message
    assert "epdi weights fetch densenet121" in message
    assert "--no-pretrained" in message


def test_corrupt_file_is_never_loaded(cache):
    folder, name, _ = cache
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="corrupt"):
        load_pretrained_state_dict("densenet121", folder)


def test_sidecar_full_hash_is_checked(cache):
    folder, name, _ = cache
    path = folder / name
    digest = weights.write_sidecar(path)
    assert weights.read_sidecar(path) == digest
    weights.sidecar_path(path).write_text("0" * 64 + f"  {name}\n")
    with pytest.raises(WeightsIntegrityError, match="sidecar"):
        load_pretrained_state_dict("densenet121", folder)


def test_non_tensor_file_with_matching_hash_is_rejected(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.write_bytes(b"not a torch file")
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    raw.rename(tmp_path / f"resnet34-{prefix}.pth")
    spec = dataclasses.replace(KNOWN_WEIGHTS["resnet34"], file=f"resnet34-{prefix}.pth", sha256_prefix=prefix)
    monkeypatch.setitem(KNOWN_WEIGHTS, "resnet34", spec)
    with pytest.raises(WeightsIntegrityError, match="could not be read"):
        load_pretrained_state_dict("resnet34", tmp_path)


def test_fetch_keeps_valid_file_and_writes_sidecar(cache):
    folder, name, _ = cache
    paths = weights.fetch_weights(["densenet121"], folder, progress=False)  # present: no download
    assert paths["densenet121"] == folder / name
    assert weights.read_sidecar(folder / name) == weights.sha256_of(folder / name)


def test_cli_list_reports_cached_and_missing(cache):
    folder, name, _ = cache
    result = runner.invoke(app, ["list", "--dir", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert rows["densenet121"]["location"] == "cache" and rows["densenet121"]["verified"] is True
    assert rows["resnet152"]["location"] == "missing"


def test_cli_fetch_rejects_unknown_model(tmp_path):
    result = runner.invoke(app, ["fetch", "alexnet", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no pretrained weights known" in result.output
