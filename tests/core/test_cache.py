"""The artifact cache: content keys, atomic builds, corruption detection, cross-process safety."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from adop.cache import ArtifactRef, Workspace, compute_key


def _write(folder: Path, text: str = "payload") -> None:
    (folder / "data.txt").write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "more.bin").write_bytes(b"\x00\x01" * 100)


def test_key_depends_on_content_not_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "x.jpg").write_bytes(b"same bytes")
    shutil.copytree(a, b)
    key_a, _ = compute_key("s", "1", {"in": a}, {"p": 1})
    key_b, _ = compute_key("s", "1", {"in": b}, {"p": 1})
    assert key_a == key_b
    (b / "x.jpg").write_bytes(b"other bytes")
    assert compute_key("s", "1", {"in": b}, {"p": 1})[0] != key_a
    assert compute_key("s", "1", {"in": a}, {"p": 2})[0] != key_a
    assert compute_key("s", "2", {"in": a}, {"p": 1})[0] != key_a


def test_second_build_is_reused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    calls = []
    build = lambda out: (calls.append(1), _write(out))  # noqa: E731
    first, built1 = ws.get_or_build("stage", "1", {}, {"a": 1}, build)
    second, built2 = ws.get_or_build("stage", "1", {}, {"a": 1}, build)
    assert (built1, built2) == (True, False)
    assert first == second and len(calls) == 1
    manifest = json.loads((first.folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"data.txt", "sub/more.bin"}
    assert manifest["key"] == first.key and manifest["params"] == {"a": 1} and manifest["created"]


def test_upstream_digest_gives_early_cutoff(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    up1, _ = ws.get_or_build("up", "1", {}, {"run": 1}, _write)
    up2, _ = ws.get_or_build("up", "1", {}, {"run": 2}, _write)  # different key, identical bytes
    assert up1.key != up2.key and up1.digest == up2.digest
    assert compute_key("down", "1", {"up": up1}, {})[0] == compute_key("down", "1", {"up": up2}, {})[0]


@pytest.mark.parametrize("damage", ["delete_file", "edit_file", "delete_manifest", "garble_manifest"])
def test_damaged_artifact_is_rebuilt_not_used(tmp_path: Path, damage: str) -> None:
    ws = Workspace(tmp_path / "ws")
    ref, _ = ws.get_or_build("stage", "1", {}, {}, _write)
    target = ref.folder / "data.txt"
    if damage == "delete_file":
        target.unlink()
    elif damage == "edit_file":
        target.write_text("payloaX")  # same size, different bytes
    elif damage == "delete_manifest":
        (ref.folder / "manifest.json").unlink()
    else:
        (ref.folder / "manifest.json").write_text("{not json")
    assert not ws.check(ref)
    again, built = ws.get_or_build("stage", "1", {}, {}, _write)
    assert built and ws.check(again) and (again.folder / "data.txt").read_text() == "payload"


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")

    def explode(out: Path) -> None:
        _write(out)
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        ws.get_or_build("stage", "1", {}, {}, explode)
    assert list((ws.artifacts / "stage").iterdir()) == []


def test_stale_building_folders_are_cleaned(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    leftover = ws.artifacts / "stage" / ".building-abc-123"
    leftover.mkdir(parents=True)
    (leftover / "half.bin").write_bytes(b"x")
    assert ws.clean_stale_builds() == 1 and not leftover.exists()


def _get_or_build(root: str, marker: str, building: Any = None, release: Any = None) -> tuple[str, bool]:
    """One process's ``get_or_build``; with events, its build announces itself and waits to be released."""
    ws = Workspace(Path(root))

    def build(out: Path) -> None:
        with open(marker, "a") as handle:
            handle.write("built\n")
        if building is not None:
            building.set()
            assert release.wait(120)
        _write(out)

    ref, built = ws.get_or_build("stage", "1", {}, {"same": True}, build)
    return json.dumps(ref.to_dict()), built


def _lock_has_a_waiter(lock: Path) -> bool:
    """Whether a process is blocked in ``flock`` on ``lock`` (Linux ``/proc/locks``: waiters are marked ``->``)."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:
            where = fields[fields.index("->") + 5]
            if int(where.split(":")[-1]) == inode:
                return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux /proc/locks to see a blocked process")
def test_two_processes_build_once(tmp_path: Path) -> None:
    """The second process asks while the first is building: it waits on the key's lock, then reuses the result."""
    marker, root = tmp_path / "builds.log", tmp_path / "ws"
    key, _ = compute_key("stage", "1", {}, {"same": True})
    lock = Workspace(root).locks / f"stage-{key}.lock"
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        building, release = manager.Event(), manager.Event()
        first = pool.apply_async(_get_or_build, (str(root), str(marker), building, release))
        assert building.wait(120), "the first build never started"
        second = pool.apply_async(_get_or_build, (str(root), str(marker)))
        deadline = time.monotonic() + 120
        while not _lock_has_a_waiter(lock):  # the second process is now blocked behind the first build
            assert time.monotonic() < deadline and not second.ready(), "the second process did not wait on the lock"
            time.sleep(0.02)
        release.set()
        (first_ref, first_built), (second_ref, second_built) = first.get(120), second.get(120)
    refs = [ArtifactRef.from_dict(json.loads(r)) for r in (first_ref, second_ref)]
    assert refs[0] == refs[1] and first_built and not second_built
    assert marker.read_text().count("built") == 1
    assert Workspace(root).check(refs[0])


def test_unwritable_workspace_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from adop.errors import InputError

    with pytest.raises(InputError, match="workspace folder .* is not writable"):
        Workspace(blocker / "ws")


def test_a_file_too_large_for_its_limit_is_one_clear_error(tmp_path: Path) -> None:
    """EFBIG (a file-size limit standing in for a full disk) becomes a sentence that says why, and leaves nothing."""
    import subprocess
    import sys

    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from adop.errors import InputError\n"
        "from adop.storage import write_text_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    write_text_atomic(Path({str(tmp_path / 'big.txt')!r}), 'x' * 100_000)\n"
        "except InputError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "the disk is full, a quota is reached or the file is too large" in result.stdout
    assert list(tmp_path.iterdir()) == []
