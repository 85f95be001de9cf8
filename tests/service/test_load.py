"""Several studios' submissions at once, from separate processes, on the Prefect server's PostgreSQL and SQLite
databases: every submission becomes exactly one run and every run completes (the short CI version of
``benchmarks/studio_service.py load``)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import VENV_BIN, running_service

from imaging import write_capture

pytestmark = [pytest.mark.flow, pytest.mark.slow]
SUBMISSIONS = 6


def _submit_all_at_once(service, captures: list[Path]) -> dict[str, str]:
    """``adop submit`` for every capture set, all processes started together; shot -> flow run id."""
    processes = {f"shot{i:02d}": subprocess.Popen(
        [str(VENV_BIN / "adop"), "submit", str(capture), "--studio", "load", "--shot", f"shot{i:02d}",
         "--stop-after", "ingest"], env=service.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, capture in enumerate(captures)}
    runs = {}
    for shot, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        runs[shot] = re.search(r"flow run (\S+) queued", out).group(1)
    return runs


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_concurrent_submissions_are_each_run_once(database: str, request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    captures = [write_capture(tmp_path / f"capture{i}", count=3) for i in range(SUBMISSIONS)]
    with running_service(tmp_path / "service", url) as service:
        service.adop("studio", "add", "load")
        service.adop("studio", "setup")
        service.worker(limit=3)
        started = time.monotonic()
        runs = _submit_all_at_once(service, captures)
        final = service.wait_final(list(runs.values()))
        elapsed = time.monotonic() - started
        studio_runs = service.runs("load")
    assert len(set(runs.values())) == SUBMISSIONS
    assert sorted(r["name"] for r in studio_runs) == sorted(f"load-{shot}-v001" for shot in runs)
    assert all(final[i]["state"] == "Completed" for i in runs.values()), [final[i]["state"] for i in runs.values()]
    for shot, run_id in runs.items():
        queued = json.loads((service.root / "load" / "inbox" / shot / "v001" / "queued.json").read_text())
        assert queued["flow_run_id"] == run_id
    server_log = (service.logs / "server.log").read_text()
    print(f"{database}: {SUBMISSIONS} submissions done in {elapsed:.1f} s; "
          f"'database is locked' {server_log.count('database is locked')} times")
