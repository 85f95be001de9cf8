"""Tests of the training loop: preset smoke runs, a real optimisation, checkpoints, resume, the exported model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from train_helpers import micro_config

from adop.errors import InputError, StageError
from adop.model import load_trained_model
from adop.train import PRESETS, train
from adop.train.checkpoint import list_checkpoints, load_latest_checkpoint
from adop.scene.photos import load_scene_data
from adop.train.data import batch_for_step
from adop.train.trainer import _LoopState, _Session


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_smoke(name: str, micro_scene: Path, tmp_path: Path) -> None:
    """Every preset's config (crops shrunk to the micro scene) runs two steps, exports and renders."""
    config = micro_config(name, max_steps=2, checkpoint_every=1)
    if name == "gpu-quality":
        config = config.replace(environment_size=(32, 16))  # keep the preset's environment map, small
    result = train(micro_scene, tmp_path / "run", config, bar=False)
    assert result.steps == 2 and result.resumed_from is None
    assert [step for step, _ in list_checkpoints(tmp_path / "run")] == [2, 1]
    model = load_trained_model(tmp_path / "run")
    assert (model.scene_model.environment is not None) == config.environment_map
    image = model.render_frame(1)
    assert image.shape == (3, 48, 64) and torch.isfinite(image).all()


def test_optimisation_lowers_the_loss(micro_scene: Path, tmp_path: Path) -> None:
    config = micro_config(max_steps=40, checkpoint_every=40, eval_every=40)
    result = train(micro_scene, tmp_path / "run", config, bar=False)
    losses = [r["loss"] for r in _log(tmp_path / "run") if "loss" in r]
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8
    assert result.heldout_psnr is not None and result.heldout_psnr > 10.0
    model = load_trained_model(tmp_path / "run")
    # camera groups unlocked after epoch 1: the exposures moved away from their EXIF start
    tm = model.scene_model.tonemapper
    assert float((tm.exposure - tm.exposure_init).abs().max()) > 1e-4


def test_checkpoint_round_trip_and_fallback(micro_scene: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = micro_config(max_steps=6, checkpoint_every=2)
    train(micro_scene, run, config, bar=False)
    assert [s for s, _ in list_checkpoints(run)] == [6, 4]  # keep_checkpoints = 2
    latest = load_latest_checkpoint(run)
    assert latest is not None and latest[1]["step"] == 6
    data = load_scene_data(micro_scene)
    session, loop = _Session(config, data), _LoopState()
    session.restore(latest[1], loop)
    assert loop.step == 6
    exported = torch.load(run / "model" / "model.pt", weights_only=False)["state"]
    for key, value in session.model.state_dict().items():
        assert torch.equal(value, exported[key]), key
    for name, opt in session.optimizers.items():
        saved = latest[1]["optimizers"][name]["state"]
        for pid, state in opt.state_dict()["state"].items():
            for k, v in state.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(saved[pid][k])), (name, k)
    # a damaged newest checkpoint falls back to the previous one
    latest[0].write_bytes(b"not a checkpoint")
    fallback = load_latest_checkpoint(run)
    assert fallback is not None and fallback[1]["step"] == 4


def test_resume_continues_exactly(micro_scene: Path, tmp_path: Path) -> None:
    """Stopping after 3 steps and resuming to 6 equals an uninterrupted 6-step run (data depend on (seed, step))."""
    config = micro_config(max_steps=6, checkpoint_every=3)
    train(micro_scene, tmp_path / "a", config, bar=False)
    first = train(micro_scene, tmp_path / "b", config, max_steps=3, bar=False)
    assert first.steps == 3
    second = train(micro_scene, tmp_path / "b", config, bar=False)
    assert second.resumed_from == 3 and second.steps == 6
    a = torch.load(tmp_path / "a" / "model" / "model.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "b" / "model" / "model.pt", weights_only=False)["state"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert [r["step"] for r in _log(tmp_path / "b") if "loss" in r] == list(range(1, 7))
    # a rerun of a finished run returns at once; a different config is refused
    again = train(micro_scene, tmp_path / "b", config, bar=False)
    assert again.steps == 6 and again.resumed_from == 6
    with pytest.raises(InputError, match="different config"):
        train(micro_scene, tmp_path / "b", config.replace(seed=5), bar=False)
    with pytest.raises(InputError, match="--resume"):
        train(micro_scene, tmp_path / "b", config, resume=False, bar=False)


def test_trained_model_renders_exposure_and_hdr(micro_scene: Path, tmp_path: Path) -> None:
    train(micro_scene, tmp_path / "run", micro_config(max_steps=2), bar=False)
    model = load_trained_model(tmp_path / "run")
    cam = model.cameras[0]
    rot, trans = model.frame_pose(3)
    args = (rot, trans, cam.intrinsics, (cam.width, cam.height), cam.distortion)
    hdr = model.render(*args, hdr=True)
    bright = model.render(*args, ev=model.scene_ev - 1.0)
    dark = model.render(*args, ev=model.scene_ev + 1.0)
    assert hdr.shape == bright.shape == (3, cam.height, cam.width)
    assert 0.0 <= float(dark.min()) and float(bright.max()) <= 1.0
    assert float(bright.mean()) >= float(dark.mean())
    half = model.render(rot, trans, cam.intrinsics / 2, (cam.width // 2, cam.height // 2))
    assert half.shape == (3, cam.height // 2, cam.width // 2)
    with pytest.raises(InputError):
        model.render(rot[:2], trans, cam.intrinsics, (cam.width, cam.height))


def test_exposure_slope_anchor_removes_only_the_gamma_gauge(micro_scene: Path) -> None:
    data = load_scene_data(micro_scene)
    session = _Session(micro_config(), data)
    tm = session.model.tonemapper
    train_mask = tm.train_images
    init = tm.exposure_init.clone()
    assert float(init[train_mask].std()) > 0.1  # the micro set's EXIF EVs vary
    noise = torch.randn(init.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        tm.exposure.copy_(1.2 * init + noise)  # a drifted slope plus genuine per-image deviations
    slope = session.model.anchor_exposure_slope()
    centred = init[train_mask] - init[train_mask].mean()
    correction = (tm.exposure - init)[train_mask].detach()
    assert float((correction * centred).sum()) == pytest.approx(0.0, abs=1e-4)
    assert slope == pytest.approx(0.2 + float((noise[train_mask] * centred).sum() / (centred**2).sum()), abs=1e-5)
    assert torch.corrcoef(torch.stack([correction, noise[train_mask]]))[0, 1] > 0.9


def test_white_balance_slope_anchor(micro_scene: Path) -> None:
    session = _Session(micro_config(), load_scene_data(micro_scene))
    tm = session.model.tonemapper
    train_mask = tm.train_images
    centred = tm.exposure_init[train_mask] - tm.exposure_init[train_mask].mean()
    true_wb = torch.randn(int(train_mask.sum()), 2, generator=torch.Generator().manual_seed(1)) * 0.08
    with torch.no_grad():
        tm.log_white_balance[train_mask] = true_wb + centred[:, None] * torch.tensor([0.1, -0.05])
    session.model.anchor_white_balance_slope()
    learned = tm.log_white_balance[train_mask].detach()
    assert torch.allclose((learned * centred[:, None]).sum(dim=0), torch.zeros(2), atol=1e-4)
    for c in range(2):
        assert torch.corrcoef(torch.stack([learned[:, c], true_wb[:, c]]))[0, 1] > 0.9


class _Exploit:
    """A pickle payload that would create a file when unpickled (what a stranger's checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_needs_unpickling_is_refused_and_never_runs(micro_scene: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = micro_config(max_steps=2)
    train(micro_scene, run, config, bar=False)
    marker = tmp_path / "code-ran"
    newest = max(list_checkpoints(run))[1]
    torch.save({"format": "adop-train-checkpoint", "version": 1, "step": 999, "payload": _Exploit(marker)},
               newest.with_name("step-00000999.pt"))
    with pytest.raises(InputError, match="holds Python objects, not just tensors and numbers"):
        train(micro_scene, run, config.replace(max_steps=4), bar=False)
    assert not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_values(micro_scene: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(micro_scene, run, micro_config(max_steps=2), bar=False)
    for _, path in list_checkpoints(run):
        document = torch.load(path, weights_only=True)  # raises if anything needs unpickling
        assert document["format"] == "adop-train-checkpoint"


def test_a_step_in_parts_matches_the_whole_batch(micro_scene: Path) -> None:
    """Gradient accumulation over parts (the fallback when the device runs out of memory) is the same step."""
    config = micro_config()
    config = config.replace(raster=config.raster.replace(dropout=0.0))  # dropout draws differ between part counts
    data = load_scene_data(micro_scene)
    torch.manual_seed(0)
    whole, parts = _Session(config, data), _Session(config, data)
    parts.model.load_state_dict(whole.model.state_dict())
    first = whole._step_in_parts(0, batch_for_step(data, config.sampler, config.seed, 0), 1)
    second = parts._step_in_parts(0, batch_for_step(data, config.sampler, config.seed, 0), 3)  # 4 crops: 2+1+1
    assert second["loss"] == pytest.approx(first["loss"], rel=1e-5)
    for (name, a), b in zip(whole.model.state_dict().items(), parts.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


def test_out_of_memory_retries_the_step_in_parts(micro_scene: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device that cannot hold more than one crop: the step is retried in 2, then 4 parts, and the run goes on;
    one that cannot hold even one crop ends with a sentence."""
    data = load_scene_data(micro_scene)
    session = _Session(micro_config(), data)
    render = session.model.render_frames
    largest: list[int] = []

    def small_device(frames, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if len(frames) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        largest.append(len(frames))
        return render(frames, *args, **kwargs)

    monkeypatch.setattr(session.model, "render_frames", small_device)
    metrics = session.step(0)
    assert session.memory_parts == 4 and math.isfinite(metrics["loss"]) and largest == [1, 1, 1, 1]
    session.step(1)  # the next step starts at 4 parts
    assert session.memory_parts == 4

    def no_memory(*args, **kwargs):  # noqa: ANN002, ANN003
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(session.model, "render_frames", no_memory)
    with pytest.raises(StageError, match="even one crop at a time; use a smaller sampler crop_width"):
        session.step(2)
