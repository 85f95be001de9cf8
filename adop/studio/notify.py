"""The webhook message a studio gets when one of its runs finishes or fails.

The message is JSON (``Content-Type: application/json``), posted once per finished run, retried a few times on a
network error; a studio whose receiver is down loses the message, never the run (delivery is logged, not fatal).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)

EVENT = "adop.run.finished"


def run_message(*, studio: str, shot: str, version: int, run_id: str, state: str, reason: str | None,
                links: dict[str, str], metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON document posted to the studio's webhook."""
    return {"event": EVENT, "studio": studio, "shot": shot, "version": version, "run_id": run_id,
            "state": state, "reason": reason, "links": links, "metrics": metrics}


def post_json(url: str, message: dict[str, Any], *, attempts: int = 3, timeout_s: float = 10.0) -> bool:
    """POST ``message`` to ``url``; True when the receiver answered 2xx. Network errors are retried with a short
    backoff; a 4xx answer is not (the receiver refused this message)."""
    body = json.dumps(message).encode("utf-8")
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "adop-studio"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) checked
                if 200 <= response.status < 300:
                    return True
        except urllib.error.HTTPError as error:
            logger.warning("webhook %s refused the message for %s: HTTP %s", url, message.get("run_id"), error.code)
            if error.code < 500:
                return False
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            logger.warning("webhook %s unreachable (attempt %d/%d): %s", url, attempt, attempts, error)
        if attempt < attempts:
            time.sleep(min(2.0 ** (attempt - 1), 8.0))
    return False
