"""One way to reach the Prefect server, with the two failures a studio engineer meets turned into one sentence each:
the server is not there, or it refuses our credentials."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.settings import get_current_settings

from adop.errors import AdopError


class ServiceError(AdopError, RuntimeError):
    """The Prefect server cannot be reached, refuses the request, or does not know what was asked for."""


class RunNotFound(ServiceError):
    """No such flow run, or not one of the studio's (a studio cannot tell the two apart)."""


def api_url() -> str:
    """The configured server (``PREFECT_API_URL``); a service command never falls back to a temporary server."""
    url = get_current_settings().api.url
    if not url:
        raise ServiceError("PREFECT_API_URL is not set; point it at the studio's Prefect server, "
                           "e.g. http://127.0.0.1:4200/api")
    return url


def _explain(error: BaseException, url: str) -> ServiceError | None:
    if isinstance(error, httpx.HTTPStatusError):
        code = error.response.status_code
        if code == 401:
            return ServiceError(f"the Prefect server at {url} refused the credentials; set PREFECT_API_AUTH_STRING "
                                "to the server's auth string")
        if code == 503:
            return ServiceError(f"the Prefect server at {url} is overloaded (HTTP 503); nothing was queued, submit "
                                "again in a minute (a server on SQLite refuses requests under many at once: use "
                                "PostgreSQL)")
        if code == 403:
            return ServiceError(f"the Prefect server at {url} does not allow this request (HTTP 403)")
        detail = ""
        with contextlib.suppress(Exception):
            detail = str(error.response.json().get("detail", ""))
        suffix = f": {detail}" if detail else ""
        return ServiceError(f"the Prefect server at {url} refused the request (HTTP {code}){suffix}")
    if isinstance(error, (httpx.TransportError, ConnectionError)):
        return ServiceError(f"the Prefect server at {url} cannot be reached ({type(error).__name__}); start it or fix "
                            "PREFECT_API_URL")
    return None


@contextlib.contextmanager
def connect() -> Iterator[SyncPrefectClient]:
    """A client of the configured server, checked to answer and to accept our credentials before it is used."""
    url = api_url()
    try:
        with get_client(sync_client=True) as client:
            # One authenticated request answers both questions: a transport error means no server, a 401 no access.
            client.hello().raise_for_status()
            yield client
    except Exception as error:  # noqa: BLE001 - only errors we can explain are translated
        explained = _explain(error, url)
        if explained is None:
            raise
        raise explained from None

