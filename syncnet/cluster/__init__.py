"""Past one machine: the long job and the batch job on a Ray cluster (`--ray`).

Only this package imports Ray, and only when `--ray` is given (Ray is optional:
`pip install '.[cluster]'`).  `pool.Cluster` connects or starts a cluster and a pool of
workers (`worker.Worker`, networks loaded once each); the jobs keep their own planning,
summaries and resume (`jobs.batch.process_folder(execute=...)`, `jobs.spans.process_in_spans`),
so a cluster run writes what a one-machine run writes.
"""
from __future__ import annotations

from .pool import RAY_MISSING, Cluster, import_ray

__all__ = ["RAY_MISSING", "Cluster", "import_ray"]
