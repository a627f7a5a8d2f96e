#!/usr/bin/env bash
# The reference's script name: fetch syncnet_v2.model and the example video example.avi
# (the demo's, as the reference's script does) to data/, and sfd_face.pth to
# detectors/s3fd/weights/ (or all three to --dest DIR), each checked before it is kept.
# It runs `python -m syncnet.weights download`, with the repository's .venv if present.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py=python3
if [ -x "$here/.venv/bin/python" ]; then py="$here/.venv/bin/python"; fi
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m syncnet.weights download "$@"
