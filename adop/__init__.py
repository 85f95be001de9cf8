"""adop: a capture set in, a trained ADOP point-based neural renderer and studio deliverables out.

The library never imports Prefect; `adop.flows` wraps it (README, Layout). See docs/conventions.md for coordinate and camera conventions.
"""

# pycolmap's wheel bundles a zlib that, when pycolmap is imported first, makes every later zlib user abort with
# "free(): invalid pointer" (Python's zlib, gzip, OpenImageIO's PNG writer). Loading the system zlib first avoids it,
# so every process that imports adop is safe whatever it imports next.
import zlib  # noqa: F401  (must stay the first import)

__version__ = "0.1.0"
