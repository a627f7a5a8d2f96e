"""The pool of workers on a Ray cluster, and the two jobs' executors on it.

One Ray actor per GPU (`num_gpus=1`) on GPU nodes, and on CPU nodes one per
`cpus_per_worker` cores (torch's threads set to match); each loads the networks once.
Tasks go to them through `ray.util.ActorPool` (an actor gets the next task when it is free:
Ray's backpressure, no queue of ours), and Ray retries a task whose worker died (SIGKILL,
a lost node) on the restarted actor (`max_restarts`, `max_task_retries`).  A task's own
errors never reach Ray: a bad file or chunk comes back as a failed record, so it is not
retried.  The driver records every result as it comes back (the jobs write their summaries
then) and shows one bar with the number of live workers.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..chunking import Chunk
from ..errors import InputError, SyncNetError
from ..jobs.longvideo import LongVideoJob
from ..jobs.records import FileRecord
from ..jobs.spans import SpanResult
from ..options import FaceOptions
from .worker import ModelFactory, TaskStats, Worker

log = logging.getLogger(__name__)

RAY_MISSING = ("--ray needs Ray, an optional dependency: pip install '.[cluster]' "
               "(or pip install -r requirements-cluster.txt)")
# Environment the workers get from the driver (weights paths, memory settings, test knobs);
# with a cluster started elsewhere they would otherwise see only their node's.
FORWARDED_ENV = ("SYNCNET_", "S3FD_MODEL")
# A task whose worker died is retried this many times (on the restarted actor), no more.
RETRIES = 3


def import_ray():
    """Ray, or the one-line InputError saying how to install it (exit 2)."""
    try:
        import ray
    except ImportError as exc:
        raise InputError(RAY_MISSING) from exc
    return ray


def _cause(exc: BaseException) -> BaseException:
    """The exception a Ray error carries from the worker (ours when it is one of ours)."""
    seen = exc
    for _ in range(5):
        inner = getattr(seen, "cause", None)
        if inner is None or inner is seen:
            break
        seen = inner
    return seen


def _one_line(exc: BaseException) -> str:
    cause = _cause(exc)
    if isinstance(cause, SyncNetError):
        return str(cause)
    if type(exc).__name__ in ("ActorDiedError", "RayActorError", "ActorUnavailableError"):
        return (f"its worker process died {RETRIES + 1} times (killed, out of memory, or its node lost; "
                f"{type(exc).__name__})")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


@dataclass
class WorkerTotals:
    tasks: int = 0
    seconds: float = 0.0
    frames: int = 0
    rss: list[int] = field(default_factory=list)


class Cluster:
    """Connect (or start a local cluster), start the workers; `files` and `spans` executors.

    `address`: "auto" connects to a running cluster when there is one, else starts a local
    one; anything else is a cluster to join (ray://host:10001 or host:6379)."""

    def __init__(self, address: str, factory: ModelFactory, cpus_per_worker: int = 1, device: str | None = None,
                 progress: bool = False, verbose: bool = False):
        self.ray = ray = import_ray()
        self.progress = progress
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        t0 = time.perf_counter()
        common = dict(runtime_env={"env_vars": env} if env else None, log_to_driver=verbose,
                      logging_level=logging.INFO if verbose else logging.ERROR)
        self._own = not ray.is_initialized()  # else connected already (a program of its own, the bench)
        if not self._own:
            pass
        elif address == "auto":
            try:
                ray.init(address="auto", **common)
            except ConnectionError:
                ray.init(include_dashboard=False, **common)  # none running: a local one, for this run only
        else:
            try:
                ray.init(address=address, **common)
            except (ConnectionError, ValueError) as exc:
                raise InputError(f"--ray {address}: cannot join that cluster ({_one_line(exc)})") from exc
        self.connect_seconds = time.perf_counter() - t0
        self.factory, self.actors, self.startup_seconds = factory, [], 0.0
        self.totals: dict[str, WorkerTotals] = {}
        try:
            self.plan = self._plan(cpus_per_worker, device)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        """Workers of this run (started by the first task)."""
        return len(self.plan)

    def _plan(self, cpus_per_worker: int, device: str | None) -> list[tuple[dict, str, int | None]]:
        """(actor options, device, torch threads) of each worker: one per GPU, else one per
        `cpus_per_worker` cores of a node; each pinned to its node, placed by Ray."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        plan = []
        use_gpus = not (device or "").startswith("cpu")
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            gpus, cpus = int(res.get("GPU", 0)) if use_gpus else 0, int(res.get("CPU", 0))
            place = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            opts = dict(max_restarts=RETRIES, max_task_retries=RETRIES, max_concurrency=2, scheduling_strategy=place)
            if gpus:
                plan += [(dict(num_gpus=1, num_cpus=0, **opts), device or "cuda", None)] * gpus
            else:
                plan += [(dict(num_cpus=cpus_per_worker, **opts), "cpu", cpus_per_worker)] * (cpus // cpus_per_worker)
        if not plan:
            raise InputError(f"the Ray cluster has no GPU and no node with {cpus_per_worker} CPUs "
                             "(--cpus_per_worker)")
        return plan

    def _start(self) -> None:
        """The workers, each with its networks loaded (a loading error is the run's, in one line)."""
        if self.actors:
            return
        t0 = time.perf_counter()
        remote = self.ray.remote(_Actor)
        self.actors = [remote.options(**opts).remote(self.factory, device, threads)
                       for opts, device, threads in self.plan]
        try:
            self.names = self.ray.get([a.ready.remote() for a in self.actors])
        except self.ray.exceptions.RayError as exc:
            cause = _cause(exc)
            raise cause if isinstance(cause, SyncNetError) else SyncNetError(
                f"the workers could not start: {_one_line(exc)}") from exc
        self.startup_seconds = self.connect_seconds + time.perf_counter() - t0
        log.info("cluster: %d workers ready in %.1f s (connect %.1f s)", len(self.actors), self.startup_seconds,
                 self.connect_seconds)

    # ------------------------------------------------------------------ running tasks
    def live_workers(self) -> int:
        """Workers answering now (each has a thread free beside its task)."""
        ready, _ = self.ray.wait([a.ready.remote() for a in self.actors], num_returns=len(self.actors), timeout=2)
        return len(ready)

    def _imap(self, method: str, tasks: list[tuple[object, tuple]], bar: tqdm) -> Iterator[tuple[object, object]]:
        """(key, result) of every task as it finishes; a task lost for good gives (key, error line)."""
        from ray.util import ActorPool

        self._start()
        pool = ActorPool(self.actors)
        for key, args in tasks:
            pool.submit(lambda actor, v: getattr(actor, method).remote(*v), (key, *args))
        left = {key for key, _ in tasks}
        errors: list[str] = []
        try:
            while pool.has_next():
                try:
                    key, result, stats = pool.get_next_unordered()
                except self.ray.exceptions.RayError as exc:  # the worker died past its retries
                    errors.append(_one_line(exc))
                    log.error("a task was lost: %s", errors[-1])
                    continue
                left.discard(key)
                self._count(stats)
                yield key, result
                bar.set_postfix(workers=self.live_workers(), refresh=True)
            for key in [k for k, _ in tasks if k in left]:
                yield key, f"worker lost: {errors[0] if errors else 'no result'}"
        except KeyboardInterrupt:
            self.stop()
            raise

    def _count(self, stats: TaskStats) -> None:
        t = self.totals.setdefault(stats.worker, WorkerTotals())
        t.tasks, t.seconds, t.frames = t.tasks + 1, t.seconds + stats.seconds, t.frames + stats.frames
        t.rss.append(stats.rss)

    def files(self, out: Path, opts: FaceOptions, vshift: int, visualise: bool):
        """The batch job's executor (`jobs.batch.FileExecutor`): each file a task."""
        def execute(todo: list[Path]) -> Iterator[FileRecord]:
            with tqdm(total=len(todo), desc="files", unit="file", disable=not self.progress) as bar:
                bar.set_postfix(workers=self.size)
                for key, rec in self._imap("file", [(v.name, (str(v), str(out), opts, vshift, visualise))
                                                      for v in todo], bar):
                    if isinstance(rec, str):
                        path = next(v for v in todo if v.name == key)
                        rec = FileRecord(file=key, path=str(path), error=rec)
                    bar.update(1)
                    yield rec
        return execute

    def spans(self, job: LongVideoJob):
        """The long job's executor (`jobs.spans.SpanExecutor`) for `job` (planned by then): each span a task."""
        def execute(spans: list[list[Chunk]]) -> Iterator[tuple[list[Chunk], SpanResult | str]]:
            info, chunks, frames = job.info, job.chunks, job.summary.source_frames
            args = [(i, (str(job.source), str(job.paths.out), job.opts, info, chunks, span, frames))
                    for i, span in enumerate(spans)]
            with tqdm(total=sum(len(s) for s in spans), desc="chunks", unit="chunk",
                      disable=not self.progress) as bar:
                bar.set_postfix(workers=self.size)
                for i, result in self._imap("span", args, bar):
                    bar.update(len(spans[i]))
                    yield spans[i], result
        return execute

    def long_video(self, source: str | Path, out: str | Path, opts, force: bool = False,
                   spans: int | None = None) -> dict:
        """One long video across the workers: its chunk plan in `spans` spans (default: one a
        worker), the summary recorded here after each; the same summary as one machine's."""
        from ..jobs.spans import process_in_spans

        job = LongVideoJob(source, out, opts, None, None, force=force)
        return process_in_spans(job, spans or self.size, self.spans(job))

    # ------------------------------------------------------------------ the end
    def report(self, unit: str) -> str:
        """Per-worker throughput: tasks, busy seconds, frames (spans) per second."""
        lines = [f"Cluster:    {len(self.actors)} workers, ready in {self.startup_seconds:.1f} s "
                 f"(connecting {self.connect_seconds:.1f} s)"]
        for name, t in sorted(self.totals.items()):
            rate = f"{t.frames / t.seconds:.1f} frames/s" if t.frames and t.seconds else \
                f"{t.tasks / t.seconds * 60:.1f} {unit}/min" if t.seconds else "-"
            lines.append(f"  worker {name}: {t.tasks} tasks in {t.seconds:.1f} s ({rate}), "
                         f"RSS {max(t.rss) / 2**20:.0f} MiB")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop the workers now (Ctrl-C): their running tasks end with them."""
        for a in getattr(self, "actors", []):
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        self.stop()
        if self._own:
            self.ray.shutdown()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Actor(Worker):
    """`Worker` as the actor runs it: each task's key goes back with its result."""

    def ready(self) -> str:
        return self.name

    def file(self, key, *args):  # type: ignore[override]
        return (key, *super().file(*args))

    def span(self, key, *args):  # type: ignore[override]
        return (key, *super().span(*args))
