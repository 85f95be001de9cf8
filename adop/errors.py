"""Errors that reach users: each message says what is wrong and what to do about it."""

from __future__ import annotations


class AdopError(Exception):
    """Base class of every error adop raises on purpose (the CLI prints these as one line, no traceback)."""


class InputError(AdopError, ValueError):
    """The user's input (a folder, an image, a file format, a parameter) cannot be used as given."""


class ShapeError(AdopError, ValueError):
    """A tensor or array has the wrong shape; the message names the expected and the actual shape."""


class StageError(AdopError, RuntimeError):
    """A pipeline stage could not produce its artifact (e.g. SfM registered too few images)."""
