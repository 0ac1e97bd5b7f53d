"""The Dask driver of ``astromodal predict``: the chunks of a catalogue predicted in parallel.

:func:`~astromodal.inference.catalogue.predict_catalogue` lays out the run (the chunk plan, the output columns,
the fingerprinted parts folder ``OUT.parts/``) exactly as for the sequential driver, then hands each pending
chunk to :func:`run_tasks` as a small task: *where* its rows are (a chunk of a streamed table file, rows of an
HDF5 file, a HATS partition, or the rows themselves for an in-memory dataset), never the model. Each task runs
in a Dask worker: :func:`worker_predictor` gives the worker's model (loaded once per worker process and kept,
keyed by the model folder's SHA-256 digest: a worker never loads it twice, and no task carries it), the task
reads its rows, :func:`~astromodal.inference.catalogue.predict_partition` predicts them and the part file is
written atomically, as the sequential driver writes it. The parts are therefore the same whatever the
driver, a killed Dask run resumes like a sequential one (and either resumes the other), and the output has
exactly one row per object.

Schedulers (``--scheduler``):

* ``sequential`` (default): no Dask at all (Dask is imported only for the others, so the start-up of a
  sequential run does not change);
* ``threads``: Dask's threaded scheduler in this process, ``--workers`` threads sharing the loaded model
  (NumPy, scikit-learn and torch release the GIL in their kernels);
* ``processes``: Dask's multiprocessing scheduler, ``--workers`` processes, each loading the model once;
* ``local``: a ``distributed`` LocalCluster on this machine, ``--workers`` worker processes of one thread;
* ``tcp://host:port``: a running Dask scheduler (``dask scheduler`` + ``dask worker tcp://host:port`` on each
  machine, or any Dask deployment). The workers must see the model folder, the catalogue and the folder of
  OUT at the same paths (a shared file system); an address where no scheduler answers within
  :data:`CONNECT_TIMEOUT` seconds is one error line.

Every pending chunk starts at once (no chunk runs alone first: on two workers that would leave one idle for a
chunk's time and its model load). Where a part is finished already (a resumed run) its columns' types are
passed to every task, which casts its table to them; otherwise each part keeps its own types and
:func:`~astromodal.inference.catalogue.predict_catalogue` casts, after the run, any part whose types differ
from chunk 0's (a streamed CSV chunk infers its types on its own rows), as in the sequential driver, where
the first chunk decides them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astromodal.errors import ConfigError, DataFormatError

#: the schedulers named by a word; a running scheduler is given by its address, ``tcp://host:port``
SCHEDULERS = ("sequential", "threads", "processes", "local")

#: seconds to wait for a ``tcp://`` scheduler to answer (and for it to have a worker)
CONNECT_TIMEOUT = 10.0


def check_scheduler(scheduler: str | None, workers: int | None = None) -> str:
    """``scheduler`` checked (one of :data:`SCHEDULERS` or ``tcp://host:port``) and returned as given; with
    ``workers`` (a positive count, for ``threads``, ``processes`` and ``local``). Imports no Dask. A bad
    value is one :class:`ConfigError` line."""
    name = "sequential" if scheduler is None else str(scheduler).strip()
    if name not in SCHEDULERS:
        host, sep, port = name.removeprefix("tcp://").rpartition(":")
        if not name.startswith("tcp://") or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--scheduler {scheduler!r}: unknown; give one of {', '.join(SCHEDULERS)} or the "
                              "address of a running Dask scheduler, tcp://host:port")
    if workers is not None:
        if int(workers) < 1:
            raise ConfigError(f"--workers must be positive (got {workers})")
        if name not in ("threads", "processes", "local"):
            raise ConfigError(f"--workers {workers}: applies to --scheduler threads, processes or local (a running "
                              "scheduler has the workers started for it; sequential has none)")
    return name


def check_reachable(scheduler: str) -> None:
    """For a ``tcp://host:port`` scheduler: something must accept a connection there within
    :data:`CONNECT_TIMEOUT` s (a plain socket, no Dask import), checked before any work; else one line."""
    if not scheduler.startswith("tcp://"):
        return
    import socket

    host, _, port = scheduler.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT:g} s "
                          f"({why}); start one (dask scheduler, then dask worker on each machine) or choose "
                          "another --scheduler") from None


@dataclass(frozen=True)
class Job:
    """What every task of a run shares: the model (folder, digest, ``trust``, ``recalibrate``), the output
    columns (``plan``) and the parts folder (chunk i is ``part-<i>.parquet`` there). Small: it travels with
    each task."""

    model_dir: str
    digest: str
    trust: bool
    recalibrate: bool
    plan: Any
    parts: str
    device: str | None = None  # where a neural model runs (``--device``)

    @property
    def key(self) -> tuple[str, bool, bool, str | None]:
        return (self.digest, self.trust, self.recalibrate, self.device)


_PREDICTORS: dict[tuple[str, bool, bool, str | None], Any] = {}
_LOCK = threading.Lock()
#: models loaded by :func:`worker_predictor` in this process (what the tests count)
LOADS = {"n": 0}


def worker_predictor(job: Job) -> Any:
    """The model of ``job`` in this worker process: loaded (and its digest checked against the run's) on the
    first task, then kept for every later task of any run with the same model."""
    with _LOCK:
        got = _PREDICTORS.get(job.key)
        if got is None:
            from astromodal.inference.catalogue import load_predictor, model_digest

            if model_digest(job.model_dir) != job.digest:
                raise DataFormatError(f"{job.model_dir}: the model folder changed while predicting (its digest "
                                      "differs from the run's); rerun when it is stable")
            got = load_predictor(job.model_dir, trust=job.trust, device=job.device)
            got.recalibrate = job.recalibrate
            _PREDICTORS[job.key] = got
            LOADS["n"] += 1
        return got


def keep_predictor(job: Job, predictor: Any) -> None:
    """Give this process's workers (threads, in-process workers) the model the caller has loaded already."""
    with _LOCK:
        _PREDICTORS.setdefault(job.key, predictor)


def predict_task(job: Job, task: Any, schema: Any) -> tuple[int, int, Any]:
    """One chunk: its rows read, predicted, cast to the run's column types (``schema``, those of a finished
    part; None: the table's own) and written as its part file. Returns (chunk, rows, the part's schema)."""
    from pathlib import Path

    from astromodal.inference.catalogue import _conform, _part_name, predict_partition, write_part

    predictor = worker_predictor(job)
    chunk = task.load(predictor)
    path = Path(job.parts) / _part_name(task.index)
    table = _conform(predict_partition(predictor, chunk, job.plan), schema, {task.index: path}, task.index)
    write_part(path, table)
    return task.index, table.num_rows, table.schema


def run_tasks(job: Job, tasks: dict[int, Any], scheduler: str, workers: int | None, schema: Any,
              predictor: Any = None, advance: Callable[[int], None] | None = None,
              say: Callable[[str], None] | None = None) -> None:
    """Run ``tasks`` (chunk number -> task) on ``scheduler`` (see the module text), all at once; ``schema``:
    the column types of a finished part, every part is cast to (None: each part keeps its table's own);
    ``predictor``: the model this process has loaded (shared with its threads); ``advance(rows)`` after each
    chunk."""
    if not tasks:
        return
    _need("dask" if scheduler in ("threads", "processes") else "distributed", scheduler)
    if predictor is not None:
        keep_predictor(job, predictor)
    step = advance or (lambda rows: None)
    n = workers or os.cpu_count() or 1
    if scheduler in ("threads", "processes"):
        _run_local(job, tasks, scheduler, n, schema, step)
    else:
        _run_distributed(job, tasks, scheduler, n, schema, step, say)


def _need(module: str, scheduler: str) -> None:
    """One line naming what to install when Dask (or ``distributed``) is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"--scheduler {scheduler} needs {module} (pip install 'dask[dataframe]' distributed), "
                          "which is not installed; or use --scheduler sequential")


def _run_local(job: Job, tasks: dict[int, Any], scheduler: str, n: int, schema: Any,
               step: Callable[[int], None]) -> None:
    import dask
    from dask.callbacks import Callback

    class _Progress(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if isinstance(result, tuple) and len(result) == 3:
                step(int(result[1]))

    with _Progress():
        work = [dask.delayed(predict_task, pure=False)(job, tasks[i], schema) for i in sorted(tasks)]
        dask.compute(*work, scheduler=scheduler, num_workers=n)


def _run_distributed(job: Job, tasks: dict[int, Any], scheduler: str, n: int, schema: Any,
                     step: Callable[[int], None], say: Callable[[str], None] | None) -> None:
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = _connect(Client, scheduler)
    try:
        if say is not None and cluster is None:
            say(f"dask: {scheduler}, {len(client.scheduler_info().get('workers', {}))} workers")
        futures = [client.submit(predict_task, job, tasks[i], schema, pure=False) for i in sorted(tasks)]
        try:
            for future in as_completed(futures):
                _, rows, _ = future.result()  # a task's error is raised here, as the worker raised it
                step(rows)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _connect(client_class: Any, address: str) -> Any:
    """A client of the scheduler at ``address`` with a worker, within :data:`CONNECT_TIMEOUT` s; else one line."""
    try:
        client = client_class(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--scheduler {address}: no Dask scheduler answered within {CONNECT_TIMEOUT:g} s ({why}); "
                          "start one (dask scheduler, then dask worker on each machine) or choose another "
                          "--scheduler") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        client.close()
        raise ConfigError(f"--scheduler {address}: the Dask scheduler has no worker (none joined within "
                          f"{CONNECT_TIMEOUT:g} s); start one with dask worker {address}") from None
    return client
