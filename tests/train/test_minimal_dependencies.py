"""Training and evaluation need only torch (and numpy, scipy, Pillow): a GPU machine may have no pycolmap, open3d,
OpenImageIO, Prefect, plyfile or imageio-ffmpeg, and must still train and score a prepared scene folder. (Rendering
deliverables writes half-float EXR through OpenImageIO and movies through ffmpeg, so it keeps those.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from train_helpers import micro_config

BLOCKED = ("pycolmap", "open3d", "OpenImageIO", "prefect", "plyfile", "imageio_ffmpeg")

SCRIPT = """
import importlib.abc, json, sys
from pathlib import Path

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + " is not installed on this machine")
        return None

sys.meta_path.insert(0, Blocker())
from adop.evaluate import evaluate
from adop.model import TrainConfig, load_trained_model
from adop.train import train

config = TrainConfig.from_json(Path({config!r}).read_text())
result = train(Path({scene!r}), Path({run!r}), config, bar=False)
report = evaluate(Path({run!r}), baselines=False)
model = load_trained_model(Path({run!r}))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})
print(json.dumps({{"steps": result.steps, "psnr": report.methods[0].mean_psnr, "loaded": loaded}}))
"""


def test_train_and_evaluate_without_the_reconstruction_and_delivery_packages(micro_scene: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(micro_config(max_steps=2).to_json())
    code = SCRIPT.format(blocked=BLOCKED, config=str(config), scene=str(micro_scene), run=str(tmp_path / "run"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["steps"] == 2 and outcome["psnr"] > 0 and outcome["loaded"] == []
    assert (tmp_path / "run" / "model" / "model.pt").is_file() and (tmp_path / "run" / "eval" / "report.json").is_file()
