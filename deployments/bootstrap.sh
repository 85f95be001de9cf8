#!/usr/bin/env bash
# One-time, idempotent set-up of a studio's Prefect server for adop: the process work pool and the GPU limit.
# Run against the server in PREFECT_API_URL, from the repository's virtual environment.
set -euo pipefail
: "${PREFECT_API_URL:?point PREFECT_API_URL at your prefect server, e.g. http://127.0.0.1:4200/api}"
GPUS="${ADOP_GPUS:-1}"
prefect work-pool inspect adop-studio >/dev/null 2>&1 || prefect work-pool create adop-studio --type process
# Training and rendering take one slot of this global limit (strict: a missing limit must not mean "no limit").
prefect gcl inspect gpu >/dev/null 2>&1 || prefect gcl create gpu --limit "$GPUS"
echo "bootstrap: work pool 'adop-studio' and global concurrency limit 'gpu' ($GPUS) are ready"
echo "bootstrap: deploy with: ADOP_REPO=$(pwd) prefect deploy --prefect-file deployments/prefect.yaml --all"
echo "bootstrap: one worker per GPU: CUDA_VISIBLE_DEVICES=i prefect worker start --pool adop-studio --limit 1"
