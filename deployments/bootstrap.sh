#!/usr/bin/env bash
# One-time, idempotent set-up of a studio's Prefect server for adop (run it again after adding a studio):
# the adop-studio process work pool with its locked job template, one work queue per studio and priority,
# the on-demand and nightly deployments, and the gpu concurrency limit (ADOP_GPUS slots, updated if it exists).
# Run against the server in PREFECT_API_URL, from the virtual environment that has adop installed.
set -euo pipefail
: "${PREFECT_API_URL:?point PREFECT_API_URL at your prefect server, e.g. http://127.0.0.1:4200/api}"
: "${ADOP_STUDIO_ROOT:?point ADOP_STUDIO_ROOT at the studio folder shared by the service host and the workers}"
exec adop studio setup --gpus "${ADOP_GPUS:-1}"
