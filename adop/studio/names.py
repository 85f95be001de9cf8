"""Names a studio user types: studio and shot names become folder names, Prefect tags and work-queue names, so they
are checked once here and nothing else has to worry about ``/``, ``..`` or spaces in them."""

from __future__ import annotations

import re
from typing import Literal

from adop.errors import InputError

STUDIO_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
SHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SUBMITTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@ -]{0,63}")

Priority = Literal["low", "normal", "high"]
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
"""In the order their work queues are served."""


def check_studio(name: str) -> str:
    """``name`` if it is a valid studio name (lower-case letters, digits and ``-``, up to 40), else ``InputError``."""
    if not isinstance(name, str) or not STUDIO_NAME.fullmatch(name):
        raise InputError(f"studio name {name!r} is not allowed: use lower-case letters, digits and '-' (up to 40), "
                         "no '/', '..' or spaces")
    return name


def check_shot(name: str) -> str:
    """``name`` if it is a valid shot name (letters, digits, ``_`` and ``-``, up to 64), else ``InputError``."""
    if not isinstance(name, str) or not SHOT_NAME.fullmatch(name):
        raise InputError(f"shot name {name!r} is not allowed: use letters, digits, '_' and '-' (up to 64), "
                         "no '/', '.' or spaces")
    return name


def check_submitter(name: str) -> str:
    """``name`` if it is a plausible user name or e-mail address (up to 64 characters), else ``InputError``."""
    if not isinstance(name, str) or not SUBMITTER_NAME.fullmatch(name):
        raise InputError(f"submitter {name!r} is not allowed: use letters, digits and '_.@ -' (up to 64)")
    return name


def check_priority(priority: str) -> Priority:
    """``priority`` if it is ``low``, ``normal`` or ``high``, else ``InputError``."""
    if priority not in PRIORITIES:
        raise InputError(f"priority {priority!r} is not one of low, normal, high")
    return priority  # type: ignore[return-value]


def queue_name(studio: str, priority: str) -> str:
    """The studio's work queue for this priority: ``<studio>-<priority>``."""
    return f"{check_studio(studio)}-{check_priority(priority)}"


def run_tags(studio: str, shot: str, version: int, submitter: str) -> list[str]:
    """The Prefect tags that record who submitted what (``adop status --studio`` filters on ``studio:<name>``)."""
    return [f"studio:{studio}", f"shot:{shot}", f"version:{version}", f"submitter:{submitter}"]


def version_folder(version: int) -> str:
    """``v001`` for version 1 (the studio convention for versioned deliveries)."""
    if version < 1:
        raise InputError(f"version {version} is not a positive number")
    return f"v{version:03d}"
