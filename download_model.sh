#!/usr/bin/env bash
# Fetch the published SyncNet and S3FD weights to data/ and detectors/s3fd/weights/
# (the reference's script name; it runs `python -m syncnet.weights download`).
set -euo pipefail
cd "$(dirname "$0")"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" -m syncnet.weights download "$@"
