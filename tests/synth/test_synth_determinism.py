"""Same seed, same bytes; another seed, another set."""

from __future__ import annotations

import json
from pathlib import Path

from adop.synth import TINY, SynthLayout, generate_capture_set

NANO = TINY.with_changes(
    name="nano", views=3, width=64, height=48, heldout_views=1, surface_points=500, layout=SynthLayout(arc_degrees=30)
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path) -> None:
    first = _files(generate_capture_set(tmp_path / "a", NANO, seed=11).root)
    second = _files(generate_capture_set(tmp_path / "b", NANO, seed=11).root)
    assert first.keys() == second.keys()
    assert len([k for k in first if k.startswith("images/")]) == 3
    different = [name for name in first if first[name] != second[name]]
    assert not different, different


def test_other_seed_other_set(tmp_path) -> None:
    one = generate_capture_set(tmp_path / "a", NANO, seed=1)
    two = generate_capture_set(tmp_path / "b", NANO, seed=2)
    model_one = json.loads(one.camera_model.read_text())
    model_two = json.loads(two.camera_model.read_text())
    assert [e["true_ev"] for e in model_one["images"]] != [e["true_ev"] for e in model_two["images"]]
    assert [e["white_balance"] for e in model_one["images"]] != [e["white_balance"] for e in model_two["images"]]
    assert (one.images_dir / "view_000.jpg").read_bytes() != (two.images_dir / "view_000.jpg").read_bytes()
