"""Studio-service figures: how long a studio waits, and what the server does under many submissions at once.

``python benchmarks/studio_service.py latency WORK_DIR [--runs 3] [--stop-after reconstruct] [--poll 2] [--json PATH]``

Starts a Prefect server with API auth on 127.0.0.1 (SQLite in WORK_DIR), adds a studio, runs ``adop studio setup``,
starts one process worker (``--limit 1``, polling every ``--poll`` seconds) and submits the tiny synthetic capture set
``--runs`` times with different seeds (so nothing is cached), one after another (each waits for the previous to
finish, so the figures are not a queue), then resubmits the first set once more (every stage is found in the
studio's workspace: the cost of the service alone). For each run it prints the seconds of the ``adop submit`` command, from the run's creation to its first task (worker
poll + flow process start-up), to the flow's end, and the flow's own running time. Everything is stopped at the end.

``python benchmarks/studio_service.py load WORK_DIR [--submissions 20] [--database sqlite|postgresql] [--json PATH]``

The same server (SQLite, or a PostgreSQL database of its own on 127.0.0.1:5432, created and dropped) with one worker
(``--limit 4``); ``--submissions`` small capture sets are submitted at once, each by its own ``adop submit``
process, ingest only. Prints how many runs were created and completed (and whether any was lost or duplicated), the
seconds until all were done, the submit commands' times, the server's answer time to an authenticated request
measured every 0.5 s during the load (median, p95, max), and how often the server logged "database is locked".

``python benchmarks/studio_service.py footprint WORK_DIR [--idle 20] [--json PATH]``

What each piece of a farm costs when it waits for work: the Prefect server (SQLite), one process worker, the studio
page, a Dask scheduler and one Dask worker, started as deployments/README.md starts them; after ``--idle`` seconds,
each one's resident memory (its processes together) and CPU use over the idle time.
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
RESULTS = Path(__file__).parent / "results"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seconds(a: str | None, b: str | None) -> float | None:
    return None if not a or not b else round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    latency = modes.add_parser("latency")
    latency.add_argument("work", type=Path)
    latency.add_argument("--runs", type=int, default=3)
    latency.add_argument("--stop-after", default="reconstruct")
    latency.add_argument("--poll", type=float, default=2.0, help="PREFECT_WORKER_QUERY_SECONDS of the worker")
    latency.add_argument("--json", type=Path, default=RESULTS / "studio_service.json")
    load = modes.add_parser("load")
    load.add_argument("work", type=Path)
    load.add_argument("--submissions", type=int, default=20)
    load.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    load.add_argument("--poll", type=float, default=2.0)
    load.add_argument("--json", type=Path, default=None)
    footprint = modes.add_parser("footprint")
    footprint.add_argument("work", type=Path)
    footprint.add_argument("--idle", type=float, default=20.0)
    footprint.add_argument("--json", type=Path, default=RESULTS / "studio_service_footprint.json")
    args = parser.parse_args()
    if args.mode == "load":
        run_load(args)
    elif args.mode == "footprint":
        run_footprint(args)
    else:
        run_latency(args)


def run_latency(args: argparse.Namespace) -> None:
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


class Server:
    """A Prefect server with API auth and one worker, for the load mode."""

    def __init__(self, work: Path, database_url: str | None, poll: float) -> None:
        self.port = _port()
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADOP_"))}
        self.env.update(PREFECT_HOME=str(work / "prefect-home"), DO_NOT_TRACK="1",
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
                        PREFECT_API_URL=f"http://127.0.0.1:{self.port}/api", PREFECT_API_AUTH_STRING=AUTH,
                        ADOP_STUDIO_ROOT=str(work / "studio-root"), PREFECT_WORKER_QUERY_SECONDS=str(poll))
        self.database = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url} if database_url else {}
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "Server":
        self.processes.append(subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"],
            env={**self.env, **self.database, "PREFECT_SERVER_API_AUTH_STRING": AUTH},
            stdout=open(self.work / "server.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 180
        while not self.answers():
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise SystemExit(f"the server did not start; see {self.work / 'server.log'}")
            time.sleep(0.5)
        return self

    def answers(self) -> float | None:
        """Seconds the server took to answer an authenticated request, or None."""
        import base64

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/hello", headers={
            "Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()})
        t = time.perf_counter()
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except OSError:
            return None
        return time.perf_counter() - t

    def adop(self, *cli: str) -> str:
        return subprocess.run([str(BIN / "adop"), *cli], env=self.env, check=True, capture_output=True,
                              text=True).stdout

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _postgres_database() -> tuple[str, object]:
    """A new database on the local PostgreSQL: (its URL, a function that drops it)."""
    import asyncio
    import getpass
    import uuid

    import asyncpg

    name = f"adop_bench_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(host="127.0.0.1", port=5432, database="postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    user = os.environ.get("PGUSER") or getpass.getuser()
    return (f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}",
            lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_load(args: argparse.Namespace) -> None:
    import threading

    import numpy as np
    from PIL import Image

    work = args.work.resolve() / args.database
    if work.exists():
        raise SystemExit(f"{work} exists; choose a new WORK_DIR")
    work.mkdir(parents=True)
    captures = []
    rng = np.random.default_rng(0)
    for index in range(args.submissions):  # small photos: the load is the service's, not the pipeline's
        folder = work / "captures" / f"set{index:02d}"
        folder.mkdir(parents=True)
        for photo in range(3):
            Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(folder / f"p{photo}.jpg")
        captures.append(folder)
    url, drop = _postgres_database() if args.database == "postgresql" else (None, lambda: None)
    latencies: list[float] = []
    failures = 0
    try:
        with Server(work, url, args.poll) as server:
            server.adop("studio", "add", "load")
            server.adop("studio", "setup")
            server.processes.append(subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "adop-studio", "--limit", "4"], env=server.env,
                stdout=open(work / "worker.log", "w"), stderr=subprocess.STDOUT))
            stop = threading.Event()

            def probe() -> None:
                nonlocal failures
                while not stop.wait(0.5):
                    answered = server.answers()
                    if answered is None:
                        failures += 1
                    else:
                        latencies.append(answered)

            prober = threading.Thread(target=probe, daemon=True)
            prober.start()
            started = time.monotonic()
            submits = [(time.monotonic(), subprocess.Popen(
                [str(BIN / "adop"), "submit", str(capture), "--studio", "load", "--shot", f"shot{i:02d}",
                 "--stop-after", "ingest"], env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)) for i, capture in enumerate(captures)]
            submit_s, run_ids, refused = [], [], []

            def collect(t: float, process: subprocess.Popen) -> None:  # each in its own thread: true end times
                out, err = process.communicate()
                submit_s.append(time.monotonic() - t)
                if process.returncode == 0:
                    run_ids.append(out.split("flow run ")[1].split()[0])
                else:
                    refused.append(err.strip()[-300:])

            collectors = [threading.Thread(target=collect, args=pair) for pair in submits]
            for collector in collectors:
                collector.start()
            for collector in collectors:
                collector.join()
            all_submitted_s = time.monotonic() - started
            deadline = time.monotonic() + 1800
            while True:
                runs = {r["id"]: r for r in json.loads(server.adop("status", "--studio", "load", "--json"))}
                done = [i for i in run_ids if runs.get(i, {}).get("state_type") in
                        ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
                if len(done) == len(run_ids) or time.monotonic() > deadline:
                    break
                time.sleep(2)
            all_done_s = time.monotonic() - started
            stop.set()
            prober.join()
        locked = (work / "server.log").read_text().count("database is locked")
    finally:
        drop()
    names = [r["name"] for r in runs.values()]
    result = {
        "benchmark": "studio_service_load", "database": args.database, "submissions": args.submissions,
        "submit_refused": refused, "runs_created": len(runs), "distinct_runs": len(set(run_ids)),
        "duplicated_names": sorted({n for n in names if names.count(n) > 1}),
        "completed": sum(1 for i in run_ids if runs.get(i, {}).get("state") == "Completed"),
        "states": sorted({r["state"] for r in runs.values()}),
        "all_submitted_s": round(all_submitted_s, 1), "all_done_s": round(all_done_s, 1), "submit_command_s": {"median": round(_percentile(submit_s, 0.5), 1),
                                                                  "min": round(min(submit_s), 1),
                                                                  "max": round(max(submit_s), 1)},
        "api_latency_ms": {"samples": len(latencies), "median": round(1000 * _percentile(latencies, 0.5), 1),
                           "p95": round(1000 * _percentile(latencies, 0.95), 1),
                           "max": round(1000 * max(latencies), 1)} if latencies else {},
        "api_unanswered": failures, "database_is_locked": locked, "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    target = args.json or RESULTS / f"studio_service_load_{args.database}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1) + "\n")



def run_footprint(args: argparse.Namespace) -> None:
    import psutil

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    with Server(work, None, poll=10.0) as server:
        server.adop("studio", "add", "alpha")
        server.adop("studio", "setup")
        scheduler_port, dashboard_port, page_port = _port(), _port(), _port()
        pieces = {
            "prefect worker (process, --limit 1)": [str(BIN / "prefect"), "worker", "start", "--pool", "adop-studio",
                                                    "--limit", "1"],
            "studio page": [str(BIN / "adop"), "studio", "serve", "--port", str(page_port)],
            "dask scheduler": [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(scheduler_port),
                               "--dashboard-address", f"127.0.0.1:{dashboard_port}"],
            "dask worker (--nthreads 1)": [str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{scheduler_port}",
                                           "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        }
        started = {"prefect server (SQLite)": server.processes[0]}
        for name, command in pieces.items():
            process = subprocess.Popen(command, env={**server.env, "OMP_WAIT_POLICY": "PASSIVE"},
                                       stdout=open(work / f"{name.split()[0]}-{len(started)}.log", "w"),
                                       stderr=subprocess.STDOUT)
            server.processes.append(process)
            started[name] = process
        time.sleep(10)  # start-up done
        trees = {name: [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
                 for name, p in started.items()}
        cpu_before = {name: sum(sum(q.cpu_times()[:2]) for q in tree) for name, tree in trees.items()}
        time.sleep(args.idle)
        figures = {}
        for name, tree in trees.items():
            rss = sum(q.memory_info().rss for q in tree) / 2**20
            cpu = (sum(sum(q.cpu_times()[:2]) for q in tree) - cpu_before[name]) / args.idle * 100
            figures[name] = {"rss_mib": round(rss), "idle_cpu_percent": round(cpu, 1), "processes": len(tree)}
            print(f"{name:>36}: {rss:6.0f} MiB in {len(tree)} process(es), {cpu:5.1f} % of a core while idle")
    record = {"command": f"python benchmarks/studio_service.py footprint WORK --idle {args.idle}",
              "date": datetime.now().isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "pieces": figures}
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
