"""A training process killed with SIGKILL after its first checkpoint resumes and ends like an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import micro_config

import adop
from adop.train import train
from adop.train.checkpoint import list_checkpoints


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(micro_scene: Path, tmp_path: Path) -> None:
    config = micro_config(max_steps=16, checkpoint_every=2, log_every=1, eval_every=16)
    config_file = tmp_path / "config.json"
    config_file.write_text(config.to_json())
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(adop.__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "adop", "train", str(micro_scene), "--out", str(run), "--config", str(config_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not list_checkpoints(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the training process ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = list_checkpoints(run)[0][0]
    assert 0 < killed_at < 16
    assert not (run / "model").exists()

    resumed = train(micro_scene, run, config, bar=False)
    assert resumed.resumed_from is not None and resumed.resumed_from >= killed_at
    assert resumed.steps == 16

    reference = train(micro_scene, tmp_path / "reference", config, bar=False)
    assert reference.steps == 16
    assert resumed.heldout_psnr is not None and reference.heldout_psnr is not None
    assert abs(resumed.heldout_psnr - reference.heldout_psnr) < 0.5
    a = torch.load(run / "model" / "model.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "reference" / "model" / "model.pt", weights_only=False)["state"]
    for key in ("descriptors", "tonemapper.exposure", "renderer.final.weight"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)
    # the resumed log has one line per step: nothing lost, nothing duplicated past the checkpoint
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (run / "train_log.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert steps == list(range(1, 17))
