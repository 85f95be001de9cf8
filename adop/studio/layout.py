"""Where a studio's files live, and the list of studios with their credentials and webhooks.

``studios.json`` keeps a SHA-256 of each studio's page token (the token itself is shown once, when the studio is
added) and the studio's webhook. The file is rewritten atomically, so a crash while adding a studio leaves the old
list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from adop.errors import InputError
from adop.storage import write_json_atomic
from adop.studio.names import check_shot, check_studio, version_folder

ROOT_VARIABLE = "ADOP_STUDIO_ROOT"
REGISTRY_FILE = "studios.json"


@dataclass(frozen=True)
class Studio:
    """One studio as the service knows it."""

    name: str
    token_sha256: str
    webhook: str | None = None
    created: str = ""

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is this studio's page token (compared in constant time)."""
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, self.token_sha256)


def check_webhook(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL with a host (or None), else ``InputError``."""
    if url is None or url == "":
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"webhook {url!r} is not an http:// or https:// URL")
    return url


class StudioRoot:
    """The service's folder: the studio list and one folder per studio (see ``adop.studio``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    @classmethod
    def from_environment(cls) -> StudioRoot:
        """The root named by ``ADOP_STUDIO_ROOT`` (the service host and every worker set it to the same folder)."""
        value = os.environ.get(ROOT_VARIABLE)
        if not value:
            raise InputError(f"{ROOT_VARIABLE} is not set; point it at the studio service's folder "
                             "(the same on the service host and every worker)")
        root = cls(value)
        if not root.root.is_dir():
            raise InputError(f"{ROOT_VARIABLE}={value} is not a folder; create it with `adop studio add`")
        return root

    # -- the studio list -------------------------------------------------------------------------------------------

    def studios(self) -> dict[str, Studio]:
        path = self.root / REGISTRY_FILE
        if not path.is_file():
            return {}
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return {name: Studio(name=name, **fields) for name, fields in document["studios"].items()}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"{path} is not a readable studio list ({error}); restore it from a backup") from None

    def studio(self, name: str) -> Studio:
        """The studio called ``name``; ``InputError`` if the name is invalid or unknown."""
        check_studio(name)
        found = self.studios().get(name)
        if found is None:
            raise InputError(f"there is no studio {name!r} on this service; add it with `adop studio add {name}`")
        return found

    def add_studio(self, name: str, webhook: str | None = None, *, replace_token: bool = False) -> str | None:
        """Create the studio's folders and record it; returns its new page token (None when it existed and keeps it).

        Re-adding an existing studio updates its webhook; ``replace_token`` issues a new token (the old one stops
        working).
        """
        check_studio(name)
        webhook = check_webhook(webhook)
        studios = self.studios()
        token = None
        existing = studios.get(name)
        if existing is None or replace_token:
            token = secrets.token_urlsafe(24)
            digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        else:
            digest = existing.token_sha256
        created = existing.created if existing else datetime.now(timezone.utc).isoformat(timespec="seconds")
        studios[name] = Studio(name=name, token_sha256=digest, webhook=webhook, created=created)
        for folder in (self.inbox(name), self.workspace(name), self.deliveries(name)):
            folder.mkdir(parents=True, exist_ok=True)
        self._save(studios)
        return token

    def _save(self, studios: dict[str, Studio]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {"studios": {
            s.name: {"token_sha256": s.token_sha256, "webhook": s.webhook, "created": s.created}
            for s in sorted(studios.values(), key=lambda s: s.name)}}
        write_json_atomic(self.root / REGISTRY_FILE, document)

    # -- folders ---------------------------------------------------------------------------------------------------

    def studio_dir(self, studio: str) -> Path:
        return self.root / check_studio(studio)

    def inbox(self, studio: str) -> Path:
        return self.studio_dir(studio) / "inbox"

    def workspace(self, studio: str) -> Path:
        return self.studio_dir(studio) / "workspace"

    def deliveries(self, studio: str) -> Path:
        return self.studio_dir(studio) / "deliveries"

    def submission_dir(self, studio: str, shot: str, version: int) -> Path:
        return self.inbox(studio) / check_shot(shot) / version_folder(version)

    def delivery_dir(self, studio: str, shot: str, version: int) -> Path:
        return self.deliveries(studio) / check_shot(shot) / version_folder(version)

    def inside(self, studio: str, path: str | os.PathLike[str], what: str) -> Path:
        """``path`` resolved (links followed) if it lies in the studio's own folder, else ``InputError``.

        A run reads only its studio's inbox and writes only its studio's workspace and deliveries; a link or a
        parameter that points elsewhere (another studio, the system) is refused before anything is read.
        """
        resolved = Path(path).resolve()
        own = self.studio_dir(studio).resolve()
        if not resolved.is_relative_to(own):
            raise InputError(f"{what} {path} is outside studio {studio!r}'s folder {own}; a run may only use its "
                             "own studio's files")
        return resolved
