"""Run several worker processes on one machine, each pinned to a GPU if asked.

Workers of one study share nothing but its storage (see :mod:`optuna_adso.storage`), so the same
command run on another machine joins the same study.  Processes are started with the ``spawn``
method: a fork of a parent that has touched CUDA, a database pool or torch's thread pools is not
safe.  A worker that raises or is killed only ends itself; its exit code says what happened.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence

from optuna_adso.validation import as_int

WORKER_INDEX_ENV = "ADSO_WORKER_INDEX"
"""Each worker process sees its index (0..n-1) in this environment variable."""


def run_workers(
    worker_fn: Callable[[int], object], n_workers: int, gpus: Sequence[int] | None = None
) -> list[int]:
    """Start ``n_workers`` processes calling ``worker_fn(index)``; wait for all; their exit codes.

    ``worker_fn`` must be picklable: a function defined at the top level of an importable module
    (not a lambda or a closure).  With ``gpus``, worker ``i`` sees only GPU ``gpus[i % len(gpus)]``
    (``CUDA_VISIBLE_DEVICES``), so ``n_workers=len(gpus)`` is one worker per GPU.  Exit codes:
    0 done, 1 ``worker_fn`` raised (its traceback goes to stderr), negative: killed by that signal.
    """
    if not callable(worker_fn):
        raise TypeError(f"worker_fn must be a callable taking the worker index, got {worker_fn!r}")
    as_int(n_workers, "n_workers", 1)
    devices = _check_gpus(gpus)
    try:
        pickle.dumps(worker_fn)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing here
        raise TypeError(
            f"worker_fn must be picklable (a function defined at the top level of a module, not a "
            f"lambda or a nested function) to run in a spawned process; got {worker_fn!r}: {exc}"
        ) from None

    ctx = multiprocessing.get_context("spawn")
    procs = []
    try:
        for i in range(n_workers):
            env = {WORKER_INDEX_ENV: str(i)}
            if devices:
                env["CUDA_VISIBLE_DEVICES"] = str(devices[i % len(devices)])
            proc = ctx.Process(target=_worker_main, args=(worker_fn, i), name=f"adso-worker-{i}")
            with _environment(env):  # a spawned child copies the environment when it starts
                proc.start()
            procs.append(proc)
        for proc in procs:
            proc.join()
    except BaseException:  # Ctrl-C or an error here: do not leave orphans behind
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=10)
        raise
    return [int(proc.exitcode) if proc.exitcode is not None else 1 for proc in procs]


def _check_gpus(gpus: Sequence[int] | None) -> list[int]:
    if gpus is None:
        return []
    if isinstance(gpus, (str, bytes)) or not isinstance(gpus, Sequence) or not gpus:
        raise ValueError(f"gpus must be None or a non-empty list of GPU indices, got {gpus!r}")
    for g in gpus:
        if isinstance(g, bool) or not isinstance(g, int) or g < 0:
            raise ValueError(f"gpus must hold non-negative int GPU indices, got {g!r} in {list(gpus)!r}")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"gpus must not repeat an index, got {list(gpus)!r}")
    return list(gpus)


class _environment:
    """Set environment variables for the duration of a block, then restore them."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _worker_main(worker_fn: Callable[[int], object], index: int) -> None:
    """The child's entry point: run the worker; on an error, say which worker and exit 1."""
    try:
        worker_fn(index)
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - report every failure with its worker index
        sys.stderr.write(f"adso worker {index} failed:\n{traceback.format_exc()}")
        sys.stderr.flush()
        sys.exit(1)
