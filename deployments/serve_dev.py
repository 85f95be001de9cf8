"""Single-machine alternative to work pools: serve the pipeline from one long-running process.

    python deployments/serve_dev.py        (PREFECT_API_URL pointing at a running `prefect server start`,
                                            PREFECT_API_AUTH_STRING where the server has auth on)
    prefect deployment run 'capture-to-deliverable/dev' --param capture_dir=/path --param workspace=/path

For development on one box; a studio farm uses `adop studio setup` and workers (deployments/README.md).
"""

from adop.flows.capture_to_deliverable import capture_to_deliverable

if __name__ == "__main__":
    capture_to_deliverable.serve(name="dev", limit=1)
