"""The service commands without a usable server, and the server script without auth: one sentence, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import VENV_BIN, free_port

pytestmark = pytest.mark.flow
REPO = Path(__file__).parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADOP_"))}
    return {**env, "DO_NOT_TRACK": "1", **extra}


def _adop(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "adop"), *args], env=_env(**env), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", [["status"], ["cancel", "0b7c7f7e-0000-4000-8000-000000000000"]])
def test_no_server_configured(command: list[str]) -> None:
    result = _adop(*command)
    assert result.returncode == 2 and "PREFECT_API_URL is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_server() -> None:
    result = _adop("status", "--studio", "alpha", PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert result.returncode == 2 and "cannot be reached" in result.stderr and "Traceback" not in result.stderr


def test_bad_studio_name_is_refused_before_the_server_is_asked(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    capture.mkdir()
    result = _adop("submit", str(capture), "--studio", "../beta", "--shot", "s", "--root", str(tmp_path),
                   PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert result.returncode == 2
    assert "studio name '../beta' is not allowed" in result.stderr
    add = _adop("studio", "add", "../beta", "--root", str(tmp_path / "root"))
    assert add.returncode == 2 and "studio name '../beta' is not allowed" in add.stderr
    assert not (tmp_path / "root" / "studios.json").exists()


def test_server_script_refuses_an_open_address_without_auth() -> None:
    result = subprocess.run(["bash", str(REPO / "deployments" / "start_server.sh")], capture_output=True, text=True,
                            env=_env(ADOP_SERVER_HOST="0.0.0.0", PATH=f"{VENV_BIN}:{os.environ['PATH']}"), timeout=60)
    assert result.returncode == 2 and "refusing to listen on 0.0.0.0 without API auth" in result.stderr


def test_the_service_names_the_flows_it_deploys() -> None:
    from adop.flows.studio_run import studio_capture
    from adop.service.nightly import sweep_inboxes
    from adop.service.runs import FLOW_NAME
    from adop.service.setup import SWEEP_FLOW

    assert (studio_capture.name, sweep_inboxes.name) == (FLOW_NAME, SWEEP_FLOW)
