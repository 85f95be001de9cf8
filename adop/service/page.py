"""The studio page: one small web app on the service host where a studio signs in with its token, sees its
submissions (state, stage, progress, submitter, time, held-out PSNR/SSIM, contact sheet and reconstruction quick
look), downloads the deliverables, and submits a capture set as an archive.

    adop studio serve --host 127.0.0.1 --port 8400

Each request is checked against the studio in its address: the token (cookie from the sign-in form, or an
``Authorization: Bearer`` header) must be that studio's, and a run or file of another studio answers 404, the same as
one that does not exist. The page talks to the Prefect server with the service host's own credentials
(``PREFECT_API_AUTH_STRING``); studios never see them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from fastapi.templating import Jinja2Templates

from adop.errors import AdopError, InputError
from adop.pipeline import LAST_STAGES, PipelineOptions
from adop.service.connection import RunNotFound, ServiceError
from adop.service.runs import RunStatus, list_runs, studio_run, submit_capture_set
from adop.storage import describe_os_error, remove_quietly
from adop.studio.archive import ArchiveLimits, is_archive
from adop.studio.layout import StudioRoot, Studio
from adop.studio.names import PRIORITIES, check_studio
from adop.train.presets import PRESETS

logger = logging.getLogger(__name__)

COOKIE = "adop_studio_session"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CHUNK = 1 << 20
FORM_CHOICES = {"priorities": PRIORITIES, "presets": list(PRESETS), "last_stages": LAST_STAGES,
                "default_seconds": PipelineOptions().fly_through.seconds}


def _signed_in(request: Request, root: StudioRoot, studio: str) -> Studio | None:
    """The studio ``studio`` if the request carries its token (cookie or bearer header), else None."""
    try:
        known = root.studio(check_studio(studio))
    except AdopError:
        return None
    token = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        cookie = request.cookies.get(COOKIE, "")
        name, _, value = cookie.partition(":")
        if name == studio:
            token = value
    return known if token and known.accepts(token) else None


def _studio_for(request: Request, root: StudioRoot, studio: str) -> Studio:
    """The studio ``studio`` if the request carries its token, else 401 (never says whether the studio exists)."""
    known = _signed_in(request, root, studio)
    if known is None:
        raise HTTPException(status_code=401, detail="sign in with your studio's token")
    return known


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics fit for JSON (a NaN or infinite score becomes null)."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}


def _upload_name(filename: str | None) -> str:
    """The uploaded file's name, reduced to characters that are safe in a file name (the suffix is kept)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename or "upload").name.replace("\x00", ""))
    return name[-120:] or "upload"


def _deliverables(root: StudioRoot, run: RunStatus) -> dict[str, Any]:
    """Pictures, downloads and metrics of a run, from its delivery folder."""
    base = f"/studios/{run.studio}/runs/{run.id}/files"
    folder = root.delivery_dir(run.studio, run.shot, run.version) if run.shot and run.version else None
    pictures, downloads, metrics = [], [], {}
    if folder is not None and folder.is_dir():
        record = folder / "run.json"
        if record.is_file():
            try:
                metrics = _finite(json.loads(record.read_text(encoding="utf-8")).get("metrics", {}))
            except (OSError, ValueError):
                metrics = {}
        for sheet in sorted(folder.glob("*_contact_sheet.png")):
            pictures.append({"url": f"{base}/{sheet.name}", "label": "contact sheet", "kind": "contact-sheet"})
        if (folder / "quicklook.png").is_file():
            pictures.append({"url": f"{base}/quicklook.png", "label": "reconstruction quick look",
                             "kind": "quicklook"})
        for file in sorted(folder.iterdir()):
            if file.suffix in (".mp4", ".mov") or file.name in ("delivery.json", "reconstruction_summary.txt"):
                downloads.append({"url": f"{base}/{file.name}", "label": file.name})
        if (folder / "exr").is_dir():
            downloads.append({"url": f"/studios/{run.studio}/runs/{run.id}/exr.zip", "label": "EXR sequence (zip)"})
    return {"pictures": pictures, "downloads": downloads, "metrics": metrics}


def _run_folder(root: StudioRoot, studio: str, run_id: str) -> Path:
    try:
        return studio_run(root, studio, run_id)
    except RunNotFound:
        raise HTTPException(status_code=404, detail="no such run") from None


def _form_options(preset: str, stop_after: str, max_steps: str, seconds: str) -> PipelineOptions:
    """The submission form's fields as pipeline options (empty fields keep the defaults)."""
    defaults = PipelineOptions()
    try:
        steps = int(max_steps) if max_steps.strip() else None
        length = float(seconds) if seconds.strip() else defaults.fly_through.seconds
    except ValueError:
        raise InputError("training steps and fly-through seconds must be numbers") from None
    return defaults.replace(train_preset=preset, stop_after=stop_after, max_steps=steps,  # type: ignore[arg-type]
                            fly_through=defaults.fly_through.replace(seconds=length))


def create_app(root: StudioRoot, *, limits: ArchiveLimits = ArchiveLimits()) -> FastAPI:
    """The page's web app over the studio folder ``root``."""
    app = FastAPI(title="adop studio", docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("studio", None)
        context.setdefault("error", None)
        context.setdefault("notice", None)
        context.setdefault("next", "")
        return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)

    @app.middleware("http")
    async def refuse_unsigned_uploads(request: Request, call_next: Any) -> Response:
        """An upload is checked (token, declared size) before its body is read: FastAPI would otherwise spool the
        whole body to disk first, for anyone who can reach the page."""
        parts = request.url.path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "studios" and parts[2] == "submit":
            if _signed_in(request, root, parts[1]) is None:
                return page(request, "login.html", status_code=401, error="sign in with your studio's token")
            length = request.headers.get("content-length", "")
            if not length.isdigit():
                return JSONResponse({"detail": "an upload must declare its Content-Length"}, status_code=411)
            if int(length) > limits.max_total_bytes:
                return JSONResponse({"detail": f"the upload is larger than the limit of "
                                               f"{limits.max_total_bytes / 2**30:.1f} GiB"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.endswith(".json") or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        if error.status_code == 401:
            return page(request, "login.html", status_code=401, error=str(error.detail), next=request.url.path)
        return HTMLResponse(f"<p>{error.status_code}: {error.detail}</p>", status_code=error.status_code)

    @app.exception_handler(ServiceError)
    def service_error(request: Request, error: ServiceError) -> Response:
        return page(request, "login.html", status_code=503, error=str(error))

    @app.get("/", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return page(request, "login.html")

    @app.post("/login")
    def login(request: Request, studio: str = Form(...), token: str = Form(...), next: str = Form("")) -> Response:
        try:
            known = root.studio(check_studio(studio))
            accepted = known.accepts(token)
        except AdopError:
            accepted = False
        if not accepted:
            return page(request, "login.html", status_code=401, error="unknown studio or wrong token")
        own = f"/studios/{studio}"
        target = next if next == own or next.startswith(own + "/") else own  # only back into the studio's own pages
        response = RedirectResponse(target, status_code=303)
        # Lax: a link from a webhook message or a mail opens the page signed in; a POST from another site carries
        # no cookie, so forms cannot be submitted on a studio's behalf.
        response.set_cookie(COOKIE, f"{studio}:{token}", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    def runs_of(studio: str) -> list[dict[str, Any]]:
        rows = []
        for run in list_runs(studio, root=root):
            rows.append({**run.__dict__, "progress": run.progress, **_deliverables(root, run)})
        return rows

    @app.get("/studios/{studio}", response_class=HTMLResponse)
    def studio_page(request: Request, studio: str, notice: str | None = None) -> Response:
        _studio_for(request, root, studio)
        return page(request, "studio.html", studio=studio, runs=runs_of(studio), notice=notice,
                    **FORM_CHOICES)

    @app.get("/studios/{studio}/runs.json")
    def runs_json(request: Request, studio: str) -> Response:
        _studio_for(request, root, studio)
        return JSONResponse([{**run.to_dict(), **_deliverables(root, run)} for run in list_runs(studio, root=root)])

    @app.get("/studios/{studio}/runs/{run_id}/files/{name:path}")
    def run_file(request: Request, studio: str, run_id: str, name: str) -> Response:
        _studio_for(request, root, studio)
        folder = _run_folder(root, studio, run_id)
        try:
            path = root.inside(studio, folder / name, "file")
        except (InputError, ValueError, OSError):  # outside the folder, a NUL in the name, a name too long
            raise HTTPException(status_code=404, detail="no such file") from None
        if not path.is_file() or not path.is_relative_to(folder.resolve()):
            raise HTTPException(status_code=404, detail="no such file")
        return FileResponse(path, filename=path.name)

    @app.get("/studios/{studio}/runs/{run_id}/exr.zip")
    def exr_zip(request: Request, studio: str, run_id: str) -> Response:
        _studio_for(request, root, studio)
        folder = _run_folder(root, studio, run_id) / "exr"
        if not folder.is_dir():
            raise HTTPException(status_code=404, detail="this run delivered no EXR sequence")
        handle, temporary = tempfile.mkstemp(suffix=".zip", prefix="adop-exr-")
        os.close(handle)
        try:
            with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:  # EXR is compressed
                for frame in sorted(folder.glob("*.exr")):
                    archive.write(frame, f"exr/{frame.name}")
        except BaseException:
            os.unlink(temporary)
            raise
        return FileResponse(temporary, media_type="application/zip",
                            filename=f"{folder.parent.parent.name}_{folder.parent.name}_exr.zip",
                            background=BackgroundTask(os.unlink, temporary))

    @app.post("/studios/{studio}/submit")
    def submit_form(request: Request, studio: str, archive: UploadFile = File(...), shot: str = Form(...),
                    submitter: str = Form(...), priority: str = Form("normal"), preset: str = Form("cpu-fast"),
                    stop_after: str = Form("deliver"), max_steps: str = Form(""),
                    seconds: str = Form("")) -> Response:
        _studio_for(request, root, studio)
        name = _upload_name(archive.filename)
        uploads = root.inbox(studio) / ".uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        upload = uploads / f"{secrets.token_hex(8)}-{name}"
        try:
            if not is_archive(Path(name)):
                raise InputError(f"{name} is not a .zip, .tar or .tar.gz archive")
            received = 0
            with open(upload, "xb") as out:
                while chunk := archive.file.read(CHUNK):
                    received += len(chunk)
                    if received > limits.max_total_bytes:
                        raise InputError(f"{name} is larger than the upload limit of "
                                         f"{limits.max_total_bytes / 2**30:.1f} GiB")
                    out.write(chunk)
            options = _form_options(preset, stop_after, max_steps, seconds)
            submission, run = submit_capture_set(root, studio, shot, upload, submitter=submitter, priority=priority,
                                                 options=options, limits=limits)
        except (AdopError, OSError) as error:
            message = str(error) if isinstance(error, AdopError) else \
                f"the upload could not be stored: {describe_os_error(error)}"
            return page(request, "studio.html", status_code=400, studio=studio, runs=runs_of(studio),
                        error=message, **FORM_CHOICES)
        finally:
            remove_quietly(upload)
        logger.info("page: %s submitted by %s as flow run %s", submission.label, submitter, run.id)
        return RedirectResponse(f"/studios/{studio}?notice=queued+{submission.shot}+v{submission.version:03d}",
                                status_code=303)

    return app
