"""The studio service as studios use it, against a real Prefect server with API auth on 127.0.0.1, a real process
worker, the studio page in a real headless Chromium and a webhook receiver: two studios submit (one by the command
line, one by the page's upload form), both runs complete, each studio sees only its own run and pictures, the
webhook gets both messages, and the override that would run a command on the worker is refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import AUTH, VENV_BIN, Receiver, Service, free_port, wait_for

pytestmark = [pytest.mark.flow, pytest.mark.slow]

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _token(output: str) -> str:
    return re.search(r"page token \(shown once, keep it\): (\S+)", output).group(1)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def _slot_span(service: Service, run_id: str, stage: str, resource: str) -> tuple[str, str]:
    """When ``stage`` of the run held and released its ``resource`` slot, from the run log on the server."""
    times = service.run_log(run_id)
    return times[f"{stage}: holding a {resource} slot"], times[f"{stage}: releasing the {resource} slot"]


def _chromium(download_dir: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1500,1000", f"--user-data-dir={download_dir / 'profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=DriverService(executable_path=str(CHROMEDRIVER)), options=options)


def _picture_has_content(screenshot: Path, element) -> float:
    """Standard deviation of the screenshot's pixels where ``element`` is drawn (0 for a blank or broken image)."""
    from PIL import Image

    image = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    rect = element.rect
    y0, x0 = int(rect["y"]), int(rect["x"])
    crop = image[y0:y0 + int(rect["height"]), x0:x0 + int(rect["width"])]
    return float(crop.std()) if crop.size else 0.0


def _sign_in(driver, page_url: str, studio: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(page_url + "/")
    driver.find_element(By.ID, "studio").send_keys(studio)
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def test_two_studios_submit_follow_and_collect(service: Service, receiver: Receiver, capture: Path,
                                               tmp_path: Path) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tokens = {name: _token(service.adop("studio", "add", name, "--webhook", receiver.url).stdout)
              for name in ("alpha", "beta")}
    setup = service.adop("studio", "setup")
    assert "alpha-high" in setup.stdout and "studio-capture/on-demand" in setup.stdout

    # Refusals before anything is queued or written: a wrong auth string, an unreachable server.
    inbox_before = _files(service.root)
    wrong = service.adop("submit", str(capture), "--studio", "alpha", "--shot", "s", check=False,
                         PREFECT_API_AUTH_STRING="adop-admin:wrong")
    assert wrong.returncode == 2 and "refused the credentials" in wrong.stderr and "Traceback" not in wrong.stderr
    down = service.adop("submit", str(capture), "--studio", "alpha", "--shot", "s", check=False,
                        PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert down.returncode == 2 and "cannot be reached" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert _files(service.root) == inbox_before

    # The job-variable override that would run a command (or swap the environment) on the worker is refused.
    marker = tmp_path / "pwned"
    for override in (f"command=bash -c 'touch {marker}'", 'env={"LD_PRELOAD": "/tmp/x.so"}',
                     f"working_dir={tmp_path}"):
        attempt = service.prefect("deployment", "run", "studio-capture/on-demand", "--param", "studio=alpha",
                                  "--param", "shot=s", "--param", "version=1", "--job-variable", override)
        assert attempt.returncode != 0 and "was unexpected" in " ".join(attempt.stdout.split()), attempt.stdout

    # Queued runs wait in their studio's queue, high priority first whichever studio submitted first; a queued run
    # can be cancelled before any worker picks it up.
    queued = service.adop("submit", str(capture), "--studio", "alpha", "--shot", "cancelme", "--stop-after", "ingest",
                          "--priority", "low")
    cancel_id = re.search(r"flow run (\S+) queued", queued.stdout).group(1)
    urgent = service.adop("submit", str(capture), "--studio", "beta", "--shot", "urgent", "--stop-after", "ingest",
                          "--priority", "high")
    urgent_id = re.search(r"flow run (\S+) queued", urgent.stdout).group(1)
    order = service.python((
        "from adop.service.connection import connect\n"
        "with connect() as client:\n"
        "    runs = client.get_scheduled_flow_runs_for_work_pool('adop-studio')\n"
        "print(','.join(f'{r.flow_run.id}@{r.flow_run.work_queue_name}' for r in runs))\n")).split(",")
    studio_runs = [entry for entry in order if entry.split("@")[0] in (cancel_id, urgent_id)]  # not the nightly ones
    assert studio_runs == [f"{urgent_id}@beta-high", f"{cancel_id}@alpha-low"], order
    for run_id, studio in ((cancel_id, "alpha"), (urgent_id, "beta")):
        assert "Cancelled" in service.adop("cancel", run_id, "--studio", studio).stdout
    assert service.adop("cancel", cancel_id, check=False).returncode == 2  # already final

    worker, worker_log = service.worker()
    page_port = free_port()
    page_url = f"http://127.0.0.1:{page_port}"
    page, page_log = service.start("page", [str(VENV_BIN / "adop"), "studio", "serve", "--port", str(page_port)])
    wait_for(page_url + "/", 120, page, page_log)

    # The page refuses an unsafe archive with one sentence, and a wrong token, before anything is written.
    import httpx

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.jpg", b"x")
    before = _files(service.root / "beta")

    def upload(token: str) -> httpx.Response:
        return httpx.post(f"{page_url}/studios/beta/submit", headers={"Authorization": f"Bearer {token}"},
                          data={"shot": "evil", "submitter": "mallory"},
                          files={"archive": ("evil.zip", evil.read_bytes())}, timeout=60)

    answer = upload(tokens["beta"])
    assert answer.status_code == 400 and "points outside the archive" in answer.text
    assert upload(tokens["alpha"]).status_code == 401
    assert _files(service.root / "beta") - {"inbox/.uploads"} == before - {"inbox/.uploads"}

    # Studio alpha submits from the command line; studio beta through the page's upload form.
    submitted = time.time()
    cli = service.adop("submit", str(capture), "--studio", "alpha", "--shot", "street01", "--stop-after",
                       "train", "--max-steps", "4", "--submitter", "ana")
    alpha_id = re.search(r"flow run (\S+) queued", cli.stdout).group(1)
    assert alpha_id in cli.stdout.splitlines()[-1]  # the run's address

    archive = tmp_path / "roof.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for photo in sorted((capture / "images").iterdir()):
            zf.write(photo, f"roof/{photo.name}")
    driver = _chromium(tmp_path)
    try:
        _sign_in(driver, page_url, "beta", "not-the-token")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "error"))
        assert "wrong token" in driver.find_element(By.ID, "error").text
        _sign_in(driver, page_url, "beta", tokens["beta"])
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "submit-form"))
        driver.find_element(By.ID, "archive").send_keys(str(archive))
        driver.find_element(By.ID, "shot").send_keys("roof")
        driver.find_element(By.ID, "submitter").send_keys("bo@beta.example")
        Select(driver.find_element(By.ID, "stop-after")).select_by_value("deliver")
        driver.find_element(By.TAG_NAME, "summary").click()
        driver.find_element(By.ID, "max-steps").send_keys("4")
        driver.find_element(By.ID, "seconds").send_keys("0.25")
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.ID, "notice"))
        assert "queued roof v001" in driver.find_element(By.ID, "notice").text
        beta_id = driver.find_element(By.CSS_SELECTOR, "tr.run").get_attribute("id").removeprefix("run-")

        runs = service.wait_final([alpha_id, beta_id])
        done = time.time()
        assert runs[alpha_id]["state"] == "Completed", runs[alpha_id]
        assert runs[beta_id]["state"] == "Completed", runs[beta_id]

        # Each studio sees only its own runs, on the command line and on the page.
        assert {r["id"] for r in service.runs("alpha")} == {alpha_id, cancel_id}
        assert {r["id"] for r in service.runs("beta")} == {beta_id, urgent_id}
        assert service.adop("status", alpha_id, "--studio", "beta", check=False).returncode == 2

        driver.get(f"{page_url}/studios/beta")
        row = driver.find_element(By.ID, f"run-{beta_id}")
        assert row.get_attribute("data-state") == "Completed" and "roof" in row.text and "bo@beta.example" in row.text
        assert "dB" in row.text  # held-out PSNR / SSIM
        sheet = row.find_element(By.CSS_SELECTOR, "img.contact-sheet")
        quicklook = row.find_element(By.CSS_SELECTOR, "img.quicklook")
        WebDriverWait(driver, 30).until(lambda d: all(d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in (sheet, quicklook)))
        assert alpha_id not in driver.page_source
        downloads = {a.text for a in row.find_elements(By.CSS_SELECTOR, ".downloads a")}
        assert {"delivery.json", "EXR sequence (zip)"} <= downloads and any(d.endswith(".mp4") for d in downloads)
        shot_beta = tmp_path / "page-beta.png"
        driver.save_screenshot(str(shot_beta))
        assert _picture_has_content(shot_beta, sheet) > 5 and _picture_has_content(shot_beta, quicklook) > 5
        # Another studio's run or file is not there for beta, whatever the address says.
        driver.get(f"{page_url}/studios/alpha")
        assert "Sign in" in driver.page_source and alpha_id not in driver.page_source
        driver.get(f"{page_url}/studios/beta/runs/{alpha_id}/files/quicklook.png")
        assert "404" in driver.page_source

        driver.get(page_url + "/logout")
        _sign_in(driver, page_url, "alpha", tokens["alpha"])
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, f"run-{alpha_id}"))
        row = driver.find_element(By.ID, f"run-{alpha_id}")
        assert row.get_attribute("data-state") == "Completed" and beta_id not in driver.page_source
        assert "dB" in row.text
        assert driver.find_element(By.ID, f"run-{cancel_id}").get_attribute("data-state") == "Cancelled"
        quicklook = row.find_element(By.CSS_SELECTOR, "img.quicklook")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth > 0", quicklook))
        shot_alpha = tmp_path / "page-alpha.png"
        driver.save_screenshot(str(shot_alpha))
        assert _picture_has_content(shot_alpha, quicklook) > 5
    finally:
        driver.quit()
    keep = os.environ.get("ADOP_TEST_SCREENSHOTS")
    if keep:
        for picture in (shot_beta, shot_alpha):
            shutil.copy(picture, Path(keep) / picture.name)

    # The webhook got one message per finished run, with the state, the shot, links and metrics.
    messages = {m["run_id"]: m for m in receiver.messages}
    assert messages[alpha_id]["state"] == "Completed" and messages[alpha_id]["shot"] == "street01"
    assert messages[beta_id]["state"] == "Completed" and messages[beta_id]["studio"] == "beta"
    assert "quicklook.png" in messages[alpha_id]["links"] and messages[beta_id]["metrics"]["heldout_psnr"] > 0
    assert any(name.endswith(".mp4") for name in messages[beta_id]["links"])

    # Both runs trained, never at once: the gpu limit has one slot (the second waited for the first to release it).
    spans = [_slot_span(service, run_id, "train", "gpu") for run_id in (alpha_id, beta_id)]
    first, second = sorted(spans)
    assert first[1] <= second[0], spans
    # Dense stereo held one of the two cpu slots and ran torch on its share of the cores.
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    dense_log = [m for m in service.run_log(alpha_id) if m.startswith("dense: holding a cpu slot")]
    assert dense_log == [f"dense: holding a cpu slot ({share} CPU thread{'s' if share != 1 else ''})"], dense_log

    # adop's own log lines reach the run log on the server and the worker's output.
    logs = service.prefect("flow-run", "logs", alpha_id)
    assert "SfM registered" in logs.stdout, logs.stdout[-3000:]
    assert "adop.reconstruct.sfm" in worker_log.read_text()

    # The deliverables are fetched by run id, only by their own studio.
    fetched = service.adop("fetch", beta_id, "--out", str(tmp_path / "got"), "--studio", "beta")
    assert "copied" in fetched.stdout and list((tmp_path / "got").glob("*.mp4"))
    assert (tmp_path / "got" / "delivery.json").is_file() and list((tmp_path / "got" / "exr").glob("*.exr"))
    refused = service.adop("fetch", alpha_id, "--out", str(tmp_path / "x"), "--studio", "beta", check=False)
    assert refused.returncode == 2 and "does not belong to studio 'beta'" in refused.stderr
    assert not (tmp_path / "x").exists()

    first_stage = min(t for t in [runs[alpha_id]["started"]] if t)
    figures = {"submit_to_done_s": round(done - submitted, 1), "alpha_started": first_stage,
               "alpha_created": runs[alpha_id]["created"], "beta_created": runs[beta_id]["created"],
               "alpha_ended": runs[alpha_id]["ended"], "beta_ended": runs[beta_id]["ended"]}
    print("studio service figures:", json.dumps(figures))
    assert worker.poll() is None


def test_nightly_sweep_queues_each_submission_once(service: Service, capture: Path) -> None:
    """Submissions left for tonight are queued by the nightly deployment, each once, even after a sweep that
    crashed between creating a run and recording it."""
    if not (service.root / "studios.json").is_file():
        service.adop("studio", "add", "beta")
        service.adop("studio", "setup")
    service.worker()
    for shot in ("night01", "night02"):
        out = service.adop("submit", str(capture), "--studio", "beta", "--shot", shot, "--stop-after", "ingest",
                           "--tonight")
        assert "queued for tonight's sweep" in out.stdout
    # A sweep that crashed after creating night01's run, before recording it.
    crashed = service.python((
        "from adop.service.connection import connect\n"
        "from adop.service.runs import queue_run\n"
        "from adop.studio.inbox import read_submission\n"
        "from adop.studio.layout import StudioRoot\n"
        "root = StudioRoot.from_environment()\n"
        "with connect() as client:\n"
        "    print(queue_run(client, read_submission(root, 'beta', 'night01', 1)).id)\n"))
    sweep = service.prefect("deployment", "run", "studio-nightly-sweep/nightly", "--watch", "--watch-timeout", "300")
    assert sweep.returncode == 0, sweep.stdout[-3000:]
    inbox = service.root / "beta" / "inbox"
    recorded = {shot: json.loads((inbox / shot / "v001" / "queued.json").read_text())["flow_run_id"]
                for shot in ("night01", "night02")}
    assert recorded["night01"] == crashed  # found again by its idempotency key, not queued twice
    assert "queued 0 submission(s)" in service.adop("studio", "sweep").stdout
    runs = service.wait_final(list(recorded.values()))
    assert all(runs[i]["state"] == "Completed" for i in recorded.values())
    names = [r["name"] for r in service.runs("beta")]
    assert names.count("beta-night01-v001") == 1 and names.count("beta-night02-v001") == 1


def test_serve_dev_serves_a_run(service: Service, capture: Path, tmp_path: Path) -> None:
    """The single-machine alternative to workers: a run served by deployments/serve_dev.py completes."""
    script = Path(__file__).parents[2] / "deployments" / "serve_dev.py"
    served, log = service.start("serve-dev", [sys.executable, str(script)])
    deadline = time.monotonic() + 120
    while "capture-to-deliverable/dev" not in service.prefect("deployment", "ls").stdout:
        assert served.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(2)
    run = service.prefect("deployment", "run", "capture-to-deliverable/dev", "--param", f"capture_dir={capture}",
                          "--param", f"workspace={tmp_path / 'ws'}", "--param", 'options={"stop_after": "ingest"}',
                          "--watch", "--watch-timeout", "300")
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout[-3000:] + log.read_text()[-3000:]
    assert list((tmp_path / "ws" / "artifacts" / "ingest").glob("*/capture.json"))
    assert AUTH not in log.read_text()
