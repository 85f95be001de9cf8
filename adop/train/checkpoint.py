"""Checkpoints that survive the night: atomic writes, the last few kept, and fall-back past a damaged one.

A checkpoint is one ``torch.save`` file ``RUN_DIR/checkpoints/step-XXXXXXXX.pt`` holding everything the loop needs to
continue as if it had never stopped: the model state (network, descriptors, background, environment map, tonemapper,
refined poses), every optimiser's state, the plateau schedule, the RNG states (torch, numpy, python), the step, the
running epoch-loss sums, and the accumulated training time (so ETA and it/s survive a resume).

Writes go to a temporary sibling that is fsynced and renamed into place (``adop.storage.atomic_path``), so a SIGKILL
never leaves a half-written file under a final name; older checkpoints are deleted only after the new one is in
place. On resume the newest file that loads and carries the expected format is used; a damaged newest file is logged
and skipped, falling back to the previous one.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adop.errors import InputError
from adop.storage import atomic_path

log = logging.getLogger(__name__)

FORMAT = "adop-train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Path of the checkpoint after ``step`` completed steps."""
    return checkpoint_dir(run_dir) / f"step-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint file, newest first (temporary files are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found, reverse=True)


def rng_state() -> dict[str, Any]:
    """The process RNG states (torch CPU, numpy global, python) as tensors and plain numbers only.

    Plain, so that a checkpoint loads with ``torch.load(weights_only=True)``: loading never unpickles arbitrary objects.
    """
    name, key, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore ``rng_state`` output."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["key"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(int(v) for v in python_state["state"].tolist()),
                     python_state["gauss_next"]))


def save_checkpoint(run_dir: Path, step: int, payload: dict[str, Any], *, keep: int = 2) -> Path:
    """Atomically write the checkpoint of ``step`` and delete all but the newest ``keep``.

    Args:
        run_dir: the run folder.
        step: completed steps.
        payload: the state (see module docstring); ``format``, ``version`` and ``step`` are added here.
        keep: checkpoints to keep.

    Returns:
        The checkpoint path.
    """
    final = checkpoint_path(run_dir, step)
    document = {"format": FORMAT, "version": VERSION, "step": int(step), **payload}
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as handle:
            torch.save(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
    _fsync_dir(final.parent)
    for _, old in list_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint file without running code from it (``weights_only``: tensors and plain values only).

    Raises:
        InputError: the file holds Python objects beyond tensors and plain values (it could run code when loaded).
        ValueError: the file is not a readable checkpoint of this format.
    """
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a class or function to import: not data (a damaged file is not this)
            raise InputError(
                f"{path} holds Python objects, not just tensors and numbers; adop does not load such files because "
                "loading them can run code. Delete it (or the run folder) if you did not write it, then run again"
            ) from None
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    except Exception as error:  # noqa: BLE001 - any other failure means "damaged", the caller falls back
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not an adop training checkpoint")
    if int(document.get("version", 0)) > VERSION:
        raise ValueError(f"{path} was written by a newer adop (checkpoint version {document['version']})")
    return document


def load_latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, falling back past damaged ones with a warning; None when there is none."""
    for _, path in list_checkpoints(run_dir):
        try:
            return path, load_checkpoint(path)
        except InputError:
            raise  # a file adop refuses to load is not "damaged": say so instead of silently starting over
        except ValueError as error:
            log.warning("skipping a damaged checkpoint (%s); falling back to an older one", error)
    return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort; not every filesystem supports fsync on a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
