"""Single-machine alternative to work pools: serve the pipeline from one long-running process.

    python deployments/serve_dev.py        (with PREFECT_API_URL pointing at a running `prefect server start`)
    prefect deployment run 'capture-to-deliverable/dev' --param capture_dir=/path --param workspace=/path
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adop.flows.capture_to_deliverable import capture_to_deliverable  # noqa: E402

if __name__ == "__main__":
    capture_to_deliverable.serve(name="dev", limit=1)
