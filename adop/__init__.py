"""adop: a capture set in, a trained ADOP point-based neural renderer and studio deliverables out.

The library never imports Prefect; `flows/` wraps it. See docs/conventions.md for coordinate and camera conventions.
"""

__version__ = "0.1.0"
