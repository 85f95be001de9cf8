"""Tests of adop.nn.lpips with random, correctly shaped local weights (the ``lpips_folder`` fixture)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adop.errors import InputError, ShapeError
from adop.nn.losses import VGG16Features
from adop.nn.lpips import ENV_VAR, LPIPS, LPIPS_TAPS, load_lpips, load_lpips_dir, lpips_weights_dir
from adop.nn.metrics import compute_metrics

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def metric(lpips_folder: Path) -> LPIPS:
    return load_lpips_dir(lpips_folder)


def _images(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _reference(weights_dir: Path, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """lpips v0.1 ``LPIPS(net="vgg")(x, y, normalize=True)`` written out from its source on the raw state dicts."""
    trunk = torch.load(weights_dir / "vgg16.pth", weights_only=True)
    heads = torch.load(weights_dir / "vgg.pth", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    # torchvision vgg16().features, sliced as lpips' pretrained_networks.vgg16 does: [0, 4), [4, 9), ... [23, 30)
    config = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    cuts = {4, 9, 16, 23, 30}

    def taps(img: torch.Tensor) -> list[torch.Tensor]:
        h, out, index = ((img * 2 - 1) - shift) / scale, [], 0
        for item in config:
            if item == "M":
                h, index = F.max_pool2d(h, 2), index + 1
            else:
                w, b = trunk[f"features.{index}.weight"], trunk[f"features.{index}.bias"]
                h, index = F.relu(F.conv2d(h, w, b, padding=1)), index + 2
            if index in cuts:
                out.append(h)
        return out

    total = torch.zeros(x.shape[0])
    for k, (a, b) in enumerate(zip(taps(x), taps(y))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total += F.conv2d((a - b) ** 2, heads[f"lin{k}.model.1.weight"]).mean(dim=(1, 2, 3))
    return total


def test_vgg16_layer_numbering() -> None:
    net = VGG16Features()
    relus = [i for i, layer in enumerate(net) if isinstance(layer, torch.nn.ReLU)]
    assert set(LPIPS_TAPS) <= set(relus) and relus[-1] == 29 and len(net) == 30
    assert [i for i, layer in enumerate(net) if isinstance(layer, torch.nn.MaxPool2d)] == [4, 9, 16, 23]
    assert [net[t - 1].out_channels for t in LPIPS_TAPS] == [64, 128, 256, 512, 512]


def test_matches_the_lpips_formula(metric: LPIPS, lpips_folder: Path) -> None:
    x, y = _images(0, 2, 3, 32, 40), _images(1, 2, 3, 32, 40)
    torch.testing.assert_close(metric(x, y), _reference(lpips_folder, x, y), rtol=1e-5, atol=1e-7)


def test_zero_symmetric_and_growing_with_noise(metric: LPIPS) -> None:
    x = _images(2, 1, 3, 32, 32)
    assert float(metric(x, x)[0]) == 0.0
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    values = [float(metric((x + s * noise).clamp(0, 1), x)[0]) for s in (0.02, 0.1, 0.3)]
    assert 0 < values[0] < values[1] < values[2]
    y = _images(4, 1, 3, 32, 32)
    torch.testing.assert_close(metric(x, y), metric(y, x))


def test_frozen_and_in_eval_mode(metric: LPIPS) -> None:
    assert not any(p.requires_grad for p in metric.parameters())
    assert not metric.train().training and not metric.features.training


def test_mask_restricts_the_score(metric: LPIPS) -> None:
    x = _images(5, 2, 3, 32, 64)
    y = x.clone()
    y[..., :32] = _images(6, 2, 3, 32, 32)  # only the left half differs
    right = torch.zeros(1, 1, 32, 64)
    right[..., 36:60] = 1.0
    assert metric(x, y, mask=right).tolist() == [0.0, 0.0]
    left = torch.zeros(1, 1, 32, 64)
    left[..., 2:30] = 1.0
    # a rectangle scores lpips' value of that crop
    torch.testing.assert_close(metric(x, y, mask=left), metric(x[..., 2:30], y[..., 2:30]))
    # any other mask averages the spatial map inside the mask's bounding box
    ragged = left.clone()
    ragged[..., :8, 2:10] = 0.25
    torch.testing.assert_close(metric(x, y, mask=ragged),
                               (metric.distance_map(x[..., 2:30], y[..., 2:30]) * ragged[..., 2:30]).sum(dim=(1, 2, 3))
                               / ragged[..., 2:30].sum())
    assert (metric(x, y, mask=ragged) > 0).all()
    with pytest.raises(ShapeError, match="no pixel"):
        metric(x, y, mask=torch.zeros(1, 1, 32, 64))
    with pytest.raises(ShapeError, match="smaller"):
        metric(x, y, mask=right[..., :, :] * (torch.arange(64) >= 56))


def test_compute_metrics_fills_lpips(metric: LPIPS) -> None:
    x = _images(7, 1, 3, 24, 24)
    assert compute_metrics(x, x).lpips is None
    lp = compute_metrics(x * 1.5, x, lpips=metric).lpips
    assert lp is not None and lp.shape == (1,) and float(lp[0]) > 0


def test_missing_or_wrong_files(lpips_folder: Path, tmp_path: Path) -> None:
    backbone, heads = lpips_folder / "vgg16.pth", lpips_folder / "vgg.pth"
    with pytest.raises(InputError, match="holding vgg16.pth"):
        load_lpips_dir(tmp_path / "absent")
    with pytest.raises(InputError, match="vgg16-397923af.pth"):
        load_lpips_dir(tmp_path)
    with pytest.raises(InputError, match=r"lpips/weights/v0.1/vgg.pth"):
        load_lpips(backbone, tmp_path / "vgg.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read VGG-16"):
        load_lpips(garbage, heads)
    with pytest.raises(InputError, match="cannot read LPIPS heads"):
        load_lpips(backbone, garbage)
    vgg19 = tmp_path / "vgg19.pth"
    from adop.nn.losses import VGG19Features

    torch.save(VGG19Features().state_dict(), vgg19)
    with pytest.raises(InputError, match="not a VGG-16 features state dict"):
        load_lpips(vgg19, heads)
    alex = tmp_path / "alex.pth"
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 192, 384, 256, 256))},
               alex)
    with pytest.raises(InputError, match=r"lin1 has shape \[1, 192, 1, 1\], expected \[1, 128, 1, 1\]"):
        load_lpips(backbone, alex)
    torch.save({"lin0.model.1.weight": torch.rand(1, 64, 1, 1)}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="lin1.model.1.weight is missing"):
        load_lpips(backbone, tmp_path / "partial.pth")


def test_weights_folder_names_and_environment(lpips_folder: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(lpips_folder / "vgg16.pth", tmp_path / "vgg16-397923af.pth")  # torchvision's cache name
    shutil.copy(lpips_folder / "vgg.pth", tmp_path / "vgg.pth")
    x, y = _images(8, 1, 3, 16, 16), _images(9, 1, 3, 16, 16)
    torch.testing.assert_close(load_lpips_dir(tmp_path)(x, y), load_lpips_dir(lpips_folder)(x, y))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert lpips_weights_dir(None) is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert lpips_weights_dir(None) == tmp_path and lpips_weights_dir("elsewhere") == Path("elsewhere")
