"""A studio run whose render chunks go to the farm's Dask cluster: a real `dask scheduler` and two `dask worker`
processes on 127.0.0.1, named to the Prefect worker by ``ADOP_DASK_ADDRESS``, as deployments/README.md sets up a
render farm. The chunks run in the Dask workers, and the run delivers the same frames as a serial render."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import VENV_BIN, free_port, running_service, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.flow]


def test_render_chunks_of_a_studio_run_go_to_the_farms_dask_cluster(tmp_path: Path, capture: Path) -> None:
    with running_service(tmp_path / "service") as service:
        service.adop("studio", "add", "alpha")
        service.adop("studio", "setup", "--gpus", "2")
        port, dashboard = free_port(), free_port()
        address = f"tcp://127.0.0.1:{port}"
        scheduler, scheduler_log = service.start("dask-scheduler", [
            str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
            "--dashboard-address", f"127.0.0.1:{dashboard}"])
        wait_for(f"http://127.0.0.1:{dashboard}/health", 60, scheduler, scheduler_log)
        workers = [service.start(f"dask-worker-{i}", [str(VENV_BIN / "dask"), "worker", address, "--nworkers", "1",
                                                      "--nthreads", "1", "--name", f"render-{i}",
                                                      "--no-dashboard"])
                   for i in range(2)]
        service.start("worker", [str(VENV_BIN / "prefect"), "worker", "start", "--pool", "adop-studio", "--limit", "1",
                                 "--name", "farm-worker"], ADOP_DASK_ADDRESS=address)
        # A submission that names another scheduler: the farm's setting wins (a submitter never picks the cluster).
        run_id = service.python(
            "from pathlib import Path\n"
            "from adop.pipeline import PipelineOptions, ScaleOutConfig\n"
            "from adop.service.runs import submit_capture_set\nfrom adop.studio.layout import StudioRoot\n"
            "base = PipelineOptions(max_steps=4)\n"
            "options = base.replace(fly_through=base.fly_through.replace(seconds=0.25, fps=24),\n"
            "    render=base.render.replace(chunk_size=2), stop_after='deliver',\n"
            "    scale_out=ScaleOutConfig(runner='dask', dask_address='tcp://192.0.2.1:8786'))\n"
            f"entry, run = submit_capture_set(StudioRoot.from_environment(), 'alpha', 'farm', Path('{capture}'),\n"
            "    submitter='ana', options=options)\n"
            "print(run.id)\n")
        final = service.wait_final([run_id], timeout_s=900)[run_id]
        worker_output = (service.logs / "worker.log").read_text()
        assert final["state_type"] == "COMPLETED", worker_output[-4000:]
        assert f"Connecting to an existing Dask cluster at {address}" in worker_output
        rendered = {i: re.findall(r"render: built artifact", log.read_text()) for i, (_, log) in enumerate(workers)}
        assert sum(len(found) for found in rendered.values()) == 3, rendered  # 6 frames, 3 chunks, all on Dask
        record = json.loads((service.root / "alpha" / "deliveries" / "farm" / "v001" / "run.json").read_text())
        assert record["state"] == "Completed" and "mp4" in " ".join(record["files"])

        # The frames are those of a serial render of the same model, in this process's own render call.
        delivered = service.root / "alpha" / "deliveries" / "farm" / "v001"
        frames = {p.name: p.read_bytes() for kind in ("exr", "png") for p in sorted((delivered / kind).iterdir())}
        assert len(frames) == 12
        serial = service.python(
            "import hashlib, json\nfrom pathlib import Path\nfrom datetime import datetime\n"
            "from adop.cache import Workspace\nfrom adop.model import load_trained_model\n"
            "from adop.paths import load_camera_path\nfrom adop.render import RenderConfig, render_chunk\n"
            f"ws = Workspace(Path('{service.root}') / 'alpha' / 'workspace')\n"
            "model = next((ws.artifacts / 'train').iterdir())\npath = next((ws.artifacts / 'path').iterdir())\n"
            "created = json.loads((model / 'manifest.json').read_text())['created']\n"
            f"out = Path('{tmp_path}') / 'serial'\n"
            "camera_path = load_camera_path(path / 'camera_path.json')\n"
            "render_chunk(load_trained_model(model), camera_path, range(len(camera_path.rotations)), out,\n"
            "    RenderConfig(chunk_size=2), timestamp=datetime.fromisoformat(created).strftime('%Y:%m:%d %H:%M:%S'))\n"
            "print(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}))\n")
        assert json.loads(serial) == {name: hashlib.sha256(data).hexdigest() for name, data in frames.items()}
