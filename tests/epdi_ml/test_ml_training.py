import numpy as np
import pytest
import torch

from epdi_ml.fragments.crops import ColourScale
from epdi_ml.training.config import TrainConfig
from epdi_ml.training.data import FragmentData, FragmentDataset
from epdi_ml.training.ensemble import EnsembleResult, compute_embeddings, predict_ensemble
from epdi_ml.training.splits import group_kfold, split_paper_protocol
from epdi_ml.training.trainer import recalibrate_batchnorm, train_ensemble


def _config(**changes):
    base = dict(
        model="small_cnn",
        pretrained=False,
        epochs=3,
        patience=10,
        folds=2,
        pixels=32,
        lr=3e-3,
        batch_train=8,
        device="cpu",
    )
    return TrainConfig(**(base | changes))


def test_paper_split_all_valleys_train_rest_of_saddles_test():
    kinds = np.array(["valley", "saddle"] * 50)
    surfaces = np.repeat(np.arange(10).astype(str), 10)
    train, test = split_paper_protocol(kinds, surfaces, 0.5, seed=3)
    assert set(np.flatnonzero(kinds == "valley")) <= set(train)
    assert (kinds[test] == "saddle").all()
    assert len(set(train) & set(test)) == 0
    assert len(train) + len(test) == 100
    assert (kinds[train] == "saddle").sum() == 25
    _, test0 = split_paper_protocol(kinds, surfaces, 0.0)
    assert len(test0) == 50
    again, _ = split_paper_protocol(kinds, surfaces, 0.5, seed=3)
    np.testing.assert_array_equal(train, again)


def test_folds_never_share_a_surface():
    rng = np.random.default_rng(0)
    surfaces = rng.choice([f"s{i}" for i in range(13)], 200)
    folds = group_kfold(surfaces, 5, seed=1)
    assert len(folds) == 5
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen) == list(range(200))
    for train, val in folds:
        assert not set(surfaces[train]) & set(surfaces[val])
    with pytest.raises(ValueError, match="surfaces"):
        group_kfold(["a", "b"], 5)


def test_training_reduces_loss_and_ensemble_has_spread(fragments, tmp_path):
    test = fragments.subset(np.arange(6))
    result = train_ensemble(fragments, _config(), progress=False, test=test)
    assert result.test_mae_ev is not None and np.isfinite(result.test_mae_ev)
    assert len(result.folds) == 2
    for fold in result.folds:
        assert len(fold.train_loss_ev) == 3 and len(fold.val_mae_ev) == 3
        assert fold.train_loss_ev[-1] < fold.train_loss_ev[0]
        assert fold.images_per_second > 0 and fold.seconds_per_epoch > 0
        assert 0 <= fold.best_epoch < 3
    assert len(result.state_dicts) == 2 and len(result.val_mae_ev) == 2
    mean, std = predict_ensemble(result, fragments.images, kinds=fragments.kinds)
    assert mean.shape == std.shape == (len(fragments),)
    assert (std > 0).all()
    assert np.isfinite(mean).all()
    # the same from state dicts and from modules
    mean2, std2 = predict_ensemble(
        result.state_dicts, fragments.images, kinds=fragments.kinds, model_name="small_cnn", pixels=32
    )
    np.testing.assert_allclose(mean, mean2, atol=1e-6)
    mean3, _ = predict_ensemble(result.models(), fragments.images, kinds=fragments.kinds, pixels=32)
    np.testing.assert_allclose(mean, mean3, atol=1e-6)
    saved = EnsembleResult.load(result.save(tmp_path / "ensemble.pt"))
    mean4, std4 = predict_ensemble(saved, fragments.images, kinds=fragments.kinds)
    np.testing.assert_allclose(mean, mean4, atol=1e-6)
    np.testing.assert_allclose(std, std4, atol=1e-6)
    emb = compute_embeddings(result.models()[0], fragments.images, fragments.kinds)
    assert emb.shape == (len(fragments), 64)
    summary = result.summary()
    assert summary["config"]["model"] == "small_cnn" and len(summary["learning_curves"]) == 2


def test_resume_continues_from_checkpoint_and_matches(fragments, tmp_path):
    full = train_ensemble(fragments, _config(checkpoint_dir=tmp_path / "full"), progress=False)
    part_dir = tmp_path / "part"
    first = train_ensemble(
        fragments, _config(epochs=2, checkpoint_dir=part_dir, keep_last=True), progress=False
    )
    assert len(first.folds[0].train_loss_ev) == 2
    ckpt = torch.load(part_dir / "fold0" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and {"model", "optimizer", "scaler", "rng", "best_val_mae_ev"} <= set(ckpt)
    resumed = train_ensemble(fragments, _config(checkpoint_dir=part_dir), progress=False, resume=True)
    for a, b in zip(full.folds, resumed.folds, strict=True):
        assert a.train_loss_ev == b.train_loss_ev
        assert a.val_mae_ev == b.val_mae_ev
        assert a.best_epoch == b.best_epoch
        for key in a.state_dict:
            assert torch.equal(a.state_dict[key], b.state_dict[key]), key


def _files(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_finished_folds_keep_only_their_best_weights_unless_asked(fragments, tmp_path):
    result = train_ensemble(fragments, _config(checkpoint_dir=tmp_path / "best"), progress=False)
    assert _files(tmp_path / "best") == {"fold0/best.pt", "fold1/best.pt"}
    for fold in result.folds:
        saved = torch.load(tmp_path / "best" / f"fold{fold.fold}" / "best.pt", weights_only=True)
        assert saved["result"]["val_mae_ev"] == fold.val_mae_ev
        assert saved["result"]["best_epoch"] == fold.best_epoch
        for key, value in fold.state_dict.items():
            assert torch.equal(saved["result"]["state_dict"][key], value), key
    # a resumed run takes the finished folds from best.pt and trains nothing again
    again = train_ensemble(fragments, _config(checkpoint_dir=tmp_path / "best"), progress=False, resume=True)
    assert [f.train_loss_ev for f in again.folds] == [f.train_loss_ev for f in result.folds]
    assert [f.seconds_per_epoch for f in again.folds] == [f.seconds_per_epoch for f in result.folds]

    train_ensemble(fragments, _config(checkpoint_dir=tmp_path / "keep", keep_last=True), progress=False)
    assert _files(tmp_path / "keep") == {"fold0/best.pt", "fold0/last.pt", "fold1/best.pt", "fold1/last.pt"}
    best = (tmp_path / "keep" / "fold0" / "best.pt").stat().st_size
    assert (tmp_path / "keep" / "fold0" / "last.pt").stat().st_size > 2 * best  # optimiser + two weight sets


def test_an_interrupted_fold_resumes_from_its_last_state(fragments, tmp_path, monkeypatch):
    """A crash in fold 1 leaves fold 0's best.pt and fold 1's last.pt; resuming matches a whole run."""
    import epdi_ml.training.trainer as trainer

    full = train_ensemble(fragments, _config(), progress=False)
    real_write, writes = trainer.write_checkpoint, []

    def crash_at_fold1_epoch1(payload, path):
        if path.name == "last.pt" and payload["fold"] == 1 and payload["epoch"] == 1:
            raise KeyboardInterrupt("interrupted")
        writes.append(path)
        return real_write(payload, path)

    monkeypatch.setattr(trainer, "write_checkpoint", crash_at_fold1_epoch1)
    folder = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(fragments, _config(checkpoint_dir=folder), progress=False)
    assert _files(folder) == {"fold0/best.pt", "fold1/last.pt"}
    assert torch.load(folder / "fold1" / "last.pt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(trainer, "write_checkpoint", real_write)
    resumed = train_ensemble(fragments, _config(checkpoint_dir=folder), progress=False, resume=True)
    assert _files(folder) == {"fold0/best.pt", "fold1/best.pt"}
    for a, b in zip(full.folds, resumed.folds, strict=True):
        assert a.train_loss_ev == b.train_loss_ev and a.val_mae_ev == b.val_mae_ev
        for key in a.state_dict:
            assert torch.equal(a.state_dict[key], b.state_dict[key]), key


def test_batchnorm_statistics_are_those_of_the_fragments(fragments):
    from torch.utils.data import DataLoader

    from epdi_ml.models.networks import build_model

    model = build_model("small_cnn", False, None, 32)
    loader = DataLoader(FragmentDataset(fragments, 32), batch_size=len(fragments))
    first_conv, first_norm = model.backbone.body[0], model.backbone.body[1]
    assert torch.equal(first_norm.running_mean, torch.zeros_like(first_norm.running_mean))
    n_layers = recalibrate_batchnorm(model.eval(), loader, torch.device("cpu"))
    assert n_layers == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 7
    assert not model.training and first_norm.momentum == 0.1
    with torch.no_grad():
        out = torch.cat([first_conv(x) for x, _ in loader])
    torch.testing.assert_close(first_norm.running_mean, out.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first_norm.running_var, out.var(dim=(0, 2, 3)), rtol=1e-3, atol=1e-5)


def test_untrained_fold_model_predicts_its_mean_label(fragments):
    """A zero head with the mean label as bias: no ~1 eV scatter from a random head before training."""
    result = train_ensemble(fragments, _config(lr=1e-12, epochs=1, augment=False), progress=False)
    folds = group_kfold(fragments.surface_ids, 2, 0)
    members = predict_ensemble(result, fragments.images, kinds=fragments.kinds, return_members=True)[2]
    for (train, _), member in zip(folds, members, strict=True):
        np.testing.assert_allclose(member, fragments.energies_ev[train].mean(), atol=1e-4)
    assert fragments.energies_ev.std() > 0.05  # so a spread of predictions would show


def test_densenet_training_path_runs(make_fragments):
    data = make_fragments(n_surfaces=2, per_surface=4, pixels=32)
    config = _config(model="densenet121", epochs=1, batch_train=4, lr=5e-5)
    result = train_ensemble(data, config, progress=False)
    assert len(result.folds) == 2
    assert all(np.isfinite(f.train_loss_ev[0]) and np.isfinite(f.val_mae_ev[0]) for f in result.folds)


def test_raw_arrays_take_the_colours_of_stored_fragments():
    """from_raw colours like the fragment build (one colour mapping), clipping outside the scale."""
    raw = np.linspace(-1.5, 1.5, 2 * 8 * 8).reshape(2, 8, 8)
    rgb, clipped = ColourScale(-1.0, 1.0).to_rgb(raw)
    assert rgb.shape == (2, 8, 8, 3) and rgb.dtype == np.uint8 and clipped.tolist() == [22, 22]
    data = FragmentData.from_raw(raw, [3.0, 3.1], ["saddle", "valley"], ["a", "b"], -1.0, 1.0)
    np.testing.assert_array_equal(data.images, rgb)
    np.testing.assert_array_equal(data.images[0, 0, 0], data.images[0, 0, 1])  # both clipped to vmin
    with pytest.raises(ValueError, match="vmax"):
        FragmentData.from_raw(raw, [3.0, 3.1], ["saddle", "valley"], ["a", "b"], 1.0, 1.0)


def test_config_rejects_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="alexnet")


def test_mixed_precision_path_trains_checkpoints_and_resumes_on_cpu(fragments, tmp_path):
    """The AMP branch (float16 autocast + GradScaler) run on the CPU; without a GPU it is off by default."""
    from epdi_ml.training.config import use_amp

    assert use_amp(_config(), torch.device("cpu")) is False
    assert use_amp(_config(), torch.device("cuda")) is True
    assert use_amp(_config(amp=True), torch.device("cpu")) is True
    part = tmp_path / "amp"
    first = train_ensemble(
        fragments, _config(amp=True, epochs=1, checkpoint_dir=part, keep_last=True), progress=False
    )
    ckpt = torch.load(part / "fold0" / "last.pt", weights_only=True)
    assert 0 < ckpt["scaler"]["scale"] <= 65536.0  # an enabled scaler saves its state
    again = _config(amp=True, epochs=3, checkpoint_dir=part)
    resumed = train_ensemble(fragments, again, progress=False, resume=True)
    for a, b in zip(first.folds, resumed.folds, strict=True):
        assert b.train_loss_ev[0] == a.train_loss_ev[0] and len(b.train_loss_ev) == 3
        assert np.isfinite(b.train_loss_ev).all() and np.isfinite(b.val_mae_ev).all()
        assert b.train_loss_ev[-1] < b.train_loss_ev[0]
    fp32 = train_ensemble(
        fragments, _config(epochs=1, checkpoint_dir=tmp_path / "fp32", keep_last=True), progress=False
    )
    assert torch.load(tmp_path / "fp32" / "fold0" / "last.pt", weights_only=True)["scaler"] == {}
    # same seed, same data: float16 autocast changes the first loss only by rounding
    np.testing.assert_allclose(first.folds[0].train_loss_ev[0], fp32.folds[0].train_loss_ev[0], rtol=2e-2)
    assert first.folds[0].train_loss_ev[0] != fp32.folds[0].train_loss_ev[0]


def _anchored(fragments: FragmentData, seed: int = 1) -> FragmentData:
    """Saddles whose E_b is their (image-invisible) valley midpoint minus 0.15 eV."""
    rng = np.random.default_rng(seed)
    saddles = fragments.kinds == "saddle"
    anchors = np.where(saddles, rng.uniform(2.4, 3.5, len(fragments)), np.nan)
    energies = np.where(saddles, anchors - 0.15, fragments.energies_ev)
    return FragmentData(
        fragments.images, energies, fragments.kinds, fragments.surface_ids, fragments.ids, anchors
    )


def test_valley_anchored_models_learn_saddles_relative_to_their_valleys(fragments, tmp_path):
    data = _anchored(fragments)
    config = _config(lr=1e-12, epochs=1, augment=False)  # untrained: each model predicts its mean target
    plain = train_ensemble(data, config, progress=False)
    anchored = train_ensemble(data, _config(lr=1e-12, epochs=1, augment=False, anchor="valley-midpoint"))
    valleys = data.kinds == "valley"
    assert anchored.valley_offset_ev == pytest.approx(data.energies_ev[valleys].mean())
    offsets = anchored.offsets_ev(data)
    np.testing.assert_allclose(offsets[~valleys], data.anchors_ev[~valleys])
    assert np.all(offsets[valleys] == anchored.valley_offset_ev) and np.all(plain.offsets_ev(data) == 0)
    members = predict_ensemble(
        anchored, data.images, kinds=data.kinds, return_members=True, offsets_ev=offsets
    )[2]
    folds = group_kfold(data.surface_ids, 2, 0)
    for (train, _), member in zip(folds, members, strict=True):  # the offsets are added back to the output
        target = data.energies_ev[train] - offsets[train]
        np.testing.assert_allclose(member - offsets, target.mean(), atol=1e-4)
    saddle = ~valleys
    guess_plain = predict_ensemble(plain, data.images, kinds=data.kinds)[0]
    guess = predict_ensemble(anchored, data.images, kinds=data.kinds, offsets_ev=offsets)[0]
    error_plain = np.abs(guess_plain - data.energies_ev)[saddle].mean()
    error = np.abs(guess - data.energies_ev)[saddle].mean()
    assert error < 0.5 * error_plain  # the valleys carry what the images cannot show
    back = type(anchored).load(anchored.save(tmp_path / "ensemble.pt"))
    assert back.valley_offset_ev == anchored.valley_offset_ev and back.config.anchor == "valley-midpoint"


def test_an_anchored_model_needs_the_valleys_of_every_saddle(fragments):
    data = _anchored(fragments)
    data.anchors_ev[np.flatnonzero(data.kinds == "saddle")[0]] = np.nan
    with pytest.raises(ValueError, match=r"1 saddle fragment\(s\) site\d+ have no valley anchor"):
        train_ensemble(data, _config(epochs=1, anchor="valley-midpoint"), progress=False)
    assert np.all(data.offsets_ev("none") == 0)  # an unanchored model needs none
