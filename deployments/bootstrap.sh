#!/usr/bin/env bash
# One-time, idempotent set-up of a studio's Prefect server for adop (run it again after adding a studio):
# the adop-studio process work pool with its locked job template, one work queue per studio and priority,
# the on-demand and nightly deployments, and the gpu and cpu concurrency limits (ADOP_GPUS and ADOP_CPU_SLOTS slots,
# updated if they exist with other values), and the automation that re-queues a run whose heartbeats stop for
# ADOP_LOST_AFTER seconds (default 120: its worker was lost).
# Run against the server in PREFECT_API_URL, from the virtual environment that has adop installed.
set -euo pipefail
: "${PREFECT_API_URL:?point PREFECT_API_URL at your prefect server, e.g. http://127.0.0.1:4200/api}"
: "${ADOP_STUDIO_ROOT:?point ADOP_STUDIO_ROOT at the studio folder shared by the service host and the workers}"
exec adop studio setup --gpus "${ADOP_GPUS:-1}" --cpus "${ADOP_CPU_SLOTS:-2}" --lost-after "${ADOP_LOST_AFTER:-120}"
