"""pycolmap's bundled zlib must not break later zlib users once adop is imported (see adop/__init__.py)."""

from __future__ import annotations

import subprocess
import sys


def test_zlib_works_after_pycolmap_when_adop_comes_first() -> None:
    code = "import adop, pycolmap, zlib; assert zlib.decompress(zlib.compress(b'x' * 100000)) == b'x' * 100000"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
