"""Studio-service latency: how long a studio waits from ``adop submit`` to the first stage and to the end.

``python benchmarks/studio_service.py WORK_DIR [--runs 3] [--stop-after reconstruct] [--poll 2] [--json PATH]``

Starts a Prefect server with API auth on 127.0.0.1 (SQLite in WORK_DIR), adds a studio, runs ``adop studio setup``,
starts one process worker (``--limit 1``, polling every ``--poll`` seconds) and submits the tiny synthetic capture set
``--runs`` times with different seeds (so nothing is cached), one after another (each waits for the previous to
finish, so the figures are not a queue), then resubmits the first set once more (every stage is found in the
studio's workspace: the cost of the service alone). For each run it prints the seconds of the ``adop submit`` command, from the run's creation to its first task (worker
poll + flow process start-up), to the flow's end, and the flow's own running time. Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent
AUTH = "bench:bench-secret"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seconds(a: str | None, b: str | None) -> float | None:
    return None if not a or not b else round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stop-after", default="reconstruct")
    parser.add_argument("--poll", type=float, default=2.0, help="PREFECT_WORKER_QUERY_SECONDS of the worker")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "studio_service.json")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADOP_"))}
    env.update(PREFECT_HOME=str(work / "prefect-home"), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_API_AUTH_STRING=AUTH,
               ADOP_STUDIO_ROOT=str(work / "studio-root"), PREFECT_WORKER_QUERY_SECONDS=str(args.poll))
    captures = []
    for seed in range(args.runs):
        captures.append(work / f"capture-{seed}")
        if not (captures[-1] / "images").is_dir():
            subprocess.run([str(BIN / "adop"), "synth", str(captures[-1]), "--preset", "tiny", "--seed", str(seed)],
                           env=env, check=True, capture_output=True)
    started = []
    try:
        started.append(subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env={**env, "PREFECT_SERVER_API_AUTH_STRING": AUTH}, stdout=open(work / "server.log", "w"),
            stderr=subprocess.STDOUT))
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                if time.monotonic() - t0 > 180:
                    raise SystemExit("the server did not start; see server.log")
                time.sleep(0.5)
        server_start = time.monotonic() - t0

        def adop(*cli: str) -> str:
            return subprocess.run([str(BIN / "adop"), *cli], env=env, check=True, capture_output=True,
                                  text=True).stdout

        adop("studio", "add", "bench")
        adop("studio", "setup")
        started.append(subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "adop-studio",
                                         "--limit", "1"], env=env, stdout=open(work / "worker.log", "w"),
                                        stderr=subprocess.STDOUT))
        rows = []
        for index, capture in enumerate([*captures, captures[0]]):
            t = time.monotonic()
            out = adop("submit", str(capture), "--studio", "bench", "--shot", f"run{index}", "--stop-after",
                       args.stop_after)
            submit_s = time.monotonic() - t
            run_id = out.split("flow run ")[1].split()[0]
            while True:
                status = json.loads(adop("status", run_id, "--json"))[0]
                if status["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                time.sleep(1)
            first_task = subprocess.run(
                [sys.executable, "-c", (
                    "import sys\nfrom uuid import UUID\nfrom adop.service.connection import connect\n"
                    "from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId\n"
                    "with connect() as c:\n"
                    "    ts = c.read_task_runs(flow_run_filter=FlowRunFilter(\n"
                    "        id=FlowRunFilterId(any_=[UUID(sys.argv[1])])))\n"
                    "print(min(t.start_time for t in ts if t.start_time).isoformat())\n"), run_id],
                env=env, check=True, capture_output=True, text=True).stdout.strip()
            row = {"run": run_id, "capture": capture.name, "resubmitted": index >= len(captures),
                   "state": status["state"], "submit_command_s": round(submit_s, 1),
                   "created_to_first_stage_s": _seconds(status["created"], first_task),
                   "created_to_done_s": _seconds(status["created"], status["ended"]),
                   "flow_running_s": _seconds(status["started"], status["ended"])}
            rows.append(row)
            print(json.dumps(row))
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)
    result = {"benchmark": "studio_service", "stop_after": args.stop_after, "worker_poll_s": args.poll,
              "server_start_s": round(server_start, 1), "runs": rows, "machine": platform.platform(),
              "cpus": os.cpu_count()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"server start {server_start:.1f} s; written {args.json}")


if __name__ == "__main__":
    main()
