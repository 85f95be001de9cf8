"""pycolmap, imported without its process-wide signal handlers.

Importing pycolmap installs glog's failure handler for SIGTERM and SIGINT as well as for crashes: a worker or a run
stopped with SIGTERM (systemd, a Prefect cancellation, Ctrl-C) then prints a C++ stack dump that looks like a crash,
and Python's own handling of the signal (KeyboardInterrupt, adop's clean stop) never runs. The crash handlers
(SIGSEGV, SIGABRT, …) are kept: their dump is useful. Every adop module imports pycolmap from here.
"""

from __future__ import annotations

import signal
import threading
import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)

_RESTORED = (signal.SIGTERM, signal.SIGINT)


def _import_pycolmap():  # type: ignore[no-untyped-def]
    in_main_thread = threading.current_thread() is threading.main_thread()
    before = {sig: signal.getsignal(sig) for sig in _RESTORED}
    import pycolmap as module

    if in_main_thread:  # only the main thread may set handlers; Python itself runs there
        for sig, handler in before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    return module


pycolmap = _import_pycolmap()

__all__ = ["pycolmap"]
