"""A real Prefect server with API auth on 127.0.0.1, started (and stopped) by the tests, plus helpers to run adop and
Prefect commands against it."""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

AUTH = "adop-admin:ci-secret"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({process.returncode}): "
                               f"{log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s: {log.read_text()[-3000:] if log else ''}")


def process_tree(process: subprocess.Popen) -> list[psutil.Process]:
    """``process`` and every process under it, whatever session they are in."""
    root = psutil.Process(process.pid)
    return [root, *root.children(recursive=True)]


def stop(process: subprocess.Popen) -> None:
    """Stop ``process`` and everything it started (flow-run processes sit in sessions of their own, and one left
    behind would go on training while the next tests run): SIGTERM, then SIGKILL for whatever is still up after
    20 s."""
    try:
        tree = process_tree(process)
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=20)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=20)
    process.wait(timeout=20)


@dataclass
class Service:
    env: dict[str, str]
    root: Path
    logs: Path
    api_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    _worker: tuple[subprocess.Popen, Path] | None = None

    def adop(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(VENV_BIN / "adop"), *args], env={**self.env, **env}, capture_output=True,
                                text=True, timeout=300)
        if check:
            assert result.returncode == 0, f"adop {' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        return result

    def prefect(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "prefect"), *args], env={**self.env, **env}, capture_output=True,
                              text=True, timeout=300)

    def worker(self, limit: int = 2) -> tuple[subprocess.Popen, Path]:
        """The process worker of the studio pool (started on first use, ``limit`` runs at a time)."""
        if self._worker is None:
            self._worker = self.start("worker", [str(VENV_BIN / "prefect"), "worker", "start", "--pool",
                                                 "adop-studio", "--limit", str(limit), "--name", "ci-worker"])
        return self._worker

    def extra_worker(self, name: str) -> tuple[subprocess.Popen, Path]:
        """Another process worker of the studio pool (one run at a time), in a process group of its own."""
        return self.start(name, [str(VENV_BIN / "prefect"), "worker", "start", "--pool", "adop-studio", "--limit", "1",
                                 "--name", name], own_group=True)

    def python(self, code: str) -> str:
        """Run ``code`` in a Python process with the service's environment; its last line of output."""
        result = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip().splitlines()[-1]

    def api(self, method: str, path: str, **request: object) -> object:
        """One call to the server's REST API with the admin credentials, from this process: polling through a new
        Python process per look would keep a core of the machine busy importing Prefect while runs wait for it.
        A server busy for a while (SQLite waiting for its write lock under load) is asked again, for up to 3 min."""
        token = base64.b64encode(AUTH.encode()).decode()
        deadline = time.monotonic() + 180
        while True:
            try:
                answer = httpx.request(method, self.api_url + path, headers={"Authorization": f"Basic {token}"},
                                       timeout=60, **request)
                if answer.status_code < 500:
                    answer.raise_for_status()
                    return answer.json()
                problem = f"HTTP {answer.status_code}"
            except httpx.TransportError as error:
                problem = repr(error)
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer {method} {path} within 3 min: {problem}")
            time.sleep(2)

    def run_log(self, run_id: str) -> dict[str, str]:
        """The run's log lines on the server: ``{message: ISO timestamp}``."""
        found: dict[str, str] = {}
        offset = 0
        while page := self.api("POST", "/logs/filter", json={
                "logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200, "offset": offset}):
            found.update({log["message"]: log["timestamp"] for log in page})
            offset += len(page)
        return found

    def state_history(self, run_id: str) -> list[dict[str, str]]:
        """The run's states on the server, oldest first: ``[{"type", "name", "message"}]``."""
        states = self.api("GET", "/flow_run_states/", params={"flow_run_id": run_id})
        return [{"type": s["type"], "name": s["name"], "message": s["message"] or ""}
                for s in sorted(states, key=lambda s: s["timestamp"])]

    def runs(self, studio: str | None = None) -> list[dict]:
        """``adop status --json`` (of one studio)."""
        return json.loads(self.adop("status", "--json", *(["--studio", studio] if studio else [])).stdout)

    def wait_final(self, run_ids: list[str], timeout_s: float = 900) -> dict[str, dict]:
        """Every run's status (``adop status --json``) once all of ``run_ids`` have finished (completed, failed,
        crashed or cancelled); the server is asked directly while they run."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            found = self.api("POST", "/flow_runs/filter", json={"flow_runs": {"id": {"any_": run_ids}}})
            states = {run["id"]: run["state_type"] for run in found}
            if all(states.get(i) in FINAL for i in run_ids):
                return {r["id"]: r for r in self.runs()}
            time.sleep(3)
        logs = "\n".join(p.read_text()[-4000:] for p in self.logs.glob("worker*.log"))
        raise AssertionError(f"runs {run_ids} did not finish: {states}\n{logs}")

    def start(self, name: str, command: list[str], *, own_group: bool = False,
              **env: str) -> tuple[subprocess.Popen, Path]:
        """Start ``command`` with its output in ``logs/<name>.log``; ``own_group``: in a process group of its own
        (with its children), as a machine or a systemd unit would be, for a test to signal all of it at once."""
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(command, env={**self.env, **env}, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                   start_new_session=own_group)
        self.processes.append(process)
        return process, log


@contextlib.contextmanager
def running_service(base: Path, database_url: str | None = None) -> Iterator[Service]:
    """A Prefect server with API auth on 127.0.0.1 (SQLite in ``base``, or the PostgreSQL database
    ``database_url``), stopped with everything started through the returned ``Service``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADOP_"))}
    env.update({
        "PREFECT_HOME": str(base / "prefect-home"), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_API_AUTH_STRING": AUTH, "ADOP_STUDIO_ROOT": str(base / "studio-root"),
        "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2",
    })
    logs = base / "logs"
    logs.mkdir(parents=True)
    svc = Service(env=env, root=base / "studio-root", logs=logs, api_url=env["PREFECT_API_URL"])
    database = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url} if database_url else {}
    server, log = svc.start("server", [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-ui", "--analytics-off"],
                            PREFECT_SERVER_API_AUTH_STRING=AUTH, PREFECT_SERVER_DATABASE_TIMEOUT="30",
                            **database)  # the database timeout of deployments/start_server.sh
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", 180, server, log)
        yield svc
    finally:
        for process in reversed(svc.processes):  # workers and the page before the server
            stop(process)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("studio-service")) as svc:
        yield svc


@pytest.fixture(scope="session")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic capture set (24 photos), generated once for all the service tests (no test changes it:
    submissions copy it into their studio's inbox)."""
    from adop.synth import generate_capture_set

    out = tmp_path_factory.mktemp("capture") / "tiny"
    generate_capture_set(out, preset="tiny", seed=5)
    return out


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped afterwards."""
    asyncpg = pytest.importorskip("asyncpg")
    import asyncio
    import uuid

    name = f"adop_test_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(host="127.0.0.1", port=5432, database="postgres", timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 to create a test database in: {error}")
    user = os.environ.get("PGUSER") or getpass.getuser()
    try:
        yield f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Receiver(ThreadingHTTPServer):
    """A studio's webhook endpoint on 127.0.0.1 that records every JSON message it gets."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.messages.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
