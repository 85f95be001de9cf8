"""Crash recovery against a real Prefect server and real process workers: a studio run whose worker is stopped
(SIGTERM, as systemd stops a unit) and then killed (SIGKILL, as a lost machine) in the middle of training is put back
in its queue both times, and a new worker finishes it, reusing every finished stage and resuming training from its
last checkpoint."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import Service, process_tree, running_service

pytestmark = [pytest.mark.slow, pytest.mark.flow]
STEPS = 300
"""Training steps of the run: cpu-fast writes a checkpoint every 200, so the kill after the first leaves 100."""


def _wait(condition, timeout_s: float, what: str, *logs: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    raise AssertionError(f"{what} did not happen within {timeout_s} s\n{tails}")


def _signal_all(worker: subprocess.Popen, signum: int, timeout_s: float = 30) -> float:
    """Send ``signum`` to the worker and every process under it at once (the flow-run processes sit in sessions of
    their own), as systemd stops a unit's control group or a machine goes down; seconds until all have exited."""
    started = time.monotonic()
    processes = process_tree(worker)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)
    worker.wait(timeout=timeout_s)
    psutil.wait_procs(processes, timeout=timeout_s)
    return time.monotonic() - started


def _flow_run_processes(worker: subprocess.Popen) -> list[psutil.Process]:
    """The worker's flow-run processes (``python -m prefect.engine``), not the helpers they start themselves (a
    multiprocessing resource tracker, a forked copy of one)."""
    engines = [p for p in psutil.Process(worker.pid).children(recursive=True)
               if "prefect.engine" in " ".join(p.cmdline())]
    pids = {p.pid for p in engines}
    return [p for p in engines if p.ppid() not in pids]


def test_a_run_whose_worker_is_stopped_then_killed_resumes_on_a_new_worker(tmp_path: Path, capture: Path) -> None:
    with running_service(tmp_path / "service") as service:
        _run_the_scenario(service, capture)


def _run_the_scenario(service: Service, capture: Path) -> None:
    service.adop("studio", "add", "alpha")
    setup = service.adop("studio", "setup", "--lost-after", "60")
    assert "without a heartbeat for 60 s is re-queued" in setup.stdout
    assert service.adop("studio", "setup", "--lost-after", "30", check=False).returncode == 2
    checkpoints = service.root / "alpha" / "workspace" / "runs"

    def checkpoint_steps() -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in checkpoints.glob("*/checkpoints/step-*.pt"))

    worker, worker_log = service.extra_worker("worker-1")
    submitted = service.adop("submit", str(capture), "--studio", "alpha", "--shot", "street", "--stop-after", "train",
                             "--max-steps", str(STEPS))
    run_id = re.search(r"flow run (\S+) queued", submitted.stdout).group(1)

    # 1. The run's process is stopped (SIGTERM) while training: Prefect records it as crashed, the flow's hook puts
    #    it back in its queue, and the worker, still up, takes it again.
    _wait(lambda: "train: holding a gpu slot" in service.run_log(run_id), 300, "training start", worker_log)
    (engine,) = _flow_run_processes(worker)
    engine.send_signal(signal.SIGTERM)
    engine.wait(timeout=30)
    _wait(lambda: any(s["name"] == "Requeued" for s in service.state_history(run_id)), 60, "re-queue after SIGTERM",
          worker_log)
    history = service.state_history(run_id)
    crashed = next(i for i, s in enumerate(history) if s["type"] == "CRASHED")
    assert history[crashed + 1]["name"] == "Requeued" and "termination signal" in history[crashed]["message"]
    output = worker_log.read_text()
    assert "*** SIGTERM received" not in output and "*** Check failure" not in output, output[-3000:]

    # 2. After the first checkpoint of the second attempt, the worker and its run are killed outright (SIGKILL, as a
    #    machine that loses power): no hook runs, the heartbeats stop.
    _wait(lambda: checkpoint_steps() and checkpoint_steps()[-1] >= 200, 400, "the first checkpoint", worker_log)
    _signal_all(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    assert checkpoint_steps()[-1] < STEPS  # training was not finished

    # 3. The server notices the missing heartbeats and re-queues the run; a new worker finishes it.
    second, second_log = service.extra_worker("worker-2")
    _wait(lambda: sum(s["name"] == "Requeued" for s in service.state_history(run_id)) == 2, 240,
          "re-queue of the lost run", second_log, service.logs / "server.log")
    requeued_after = time.monotonic() - killed_at
    final = service.wait_final([run_id], timeout_s=600)[run_id]
    assert final["state_type"] == "COMPLETED", (final, second_log.read_text()[-4000:])
    # The run is reported Completed a little before its process has exited; the worker is idle once it has.
    _wait(lambda: not psutil.Process(second.pid).children(recursive=True), 120, "the finished run's process to exit",
          second_log)
    try:  # an idle worker stops at once, without a crash dump (0.3 s measured; a loaded machine can take longer)
        stopped_in = _signal_all(second, signal.SIGTERM, timeout_s=90)
    except subprocess.TimeoutExpired:
        stopped_in = float("nan")
        print("recovery: the idle worker did not stop within 90 s of SIGTERM")
    output = second_log.read_text()
    assert "*** SIGTERM received" not in output and "Traceback" not in output, output[-3000:]

    history = service.state_history(run_id)
    requeues = [s for s in history if s["name"] == "Requeued"]
    assert "crash" in requeues[0]["message"] and "no heartbeat for 60 s" in requeues[1]["message"], requeues
    record = json.loads((service.root / "alpha" / "deliveries" / "street" / "v001" / "run.json").read_text())
    assert record["state"] == "Completed"
    # The last attempt reused every finished stage and trained only what the killed attempt had not checkpointed.
    assert {record["stages"][name] for name in ("ingest", "sfm", "dense", "scene")} == {"Cached"}, record["stages"]
    assert record["stages"]["train"] == "Completed"
    resumed = [m for m in service.run_log(run_id) if m.startswith("resuming ")]
    assert any(re.search(r"\(step (\d+)\)", m) and int(re.search(r"\(step (\d+)\)", m).group(1)) >= 200
               for m in resumed), resumed
    log = [json.loads(line) for line in next(checkpoints.glob("*/train_log.jsonl")).read_text().splitlines()]
    steps = [entry["step"] for entry in log if "loss" in entry]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS  # no step logged twice after the resume
    print(f"recovery figures: SIGKILL to re-queue {requeued_after:.0f} s, idle worker stop {stopped_in:.1f} s")
