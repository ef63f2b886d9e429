"""Open the storage a study lives in, set up so that many workers can share it and survive crashes.

One call, :func:`open_storage`, turns what a user types (``--storage URL``) into an Optuna
storage:

- nothing: the embedded SQLite file :data:`DEFAULT_SQLITE_PATH` (``adso.db`` in the current
  working directory), for one machine;
- ``sqlite:///path.db``, ``postgresql://user@host/db`` or ``mysql+pymysql://user:pw@host/db``
  (``mariadb+pymysql://`` too): an :class:`optuna.storages.RDBStorage` whose connections are checked
  before use (``pool_pre_ping``), so a connection the server or a NAT dropped during an hour-long
  trial is replaced instead of killing the worker;
- ``journal:path`` or a path ending in ``.log``: a :class:`optuna.storages.JournalStorage` on a file;
- an Optuna storage object: returned as it is.

On RDB storages heartbeats are on by default: a worker killed mid-trial (SIGKILL, preemption, a
lost machine) stops beating, and the next worker to start a trial after ``grace_period`` marks the
trial FAIL and queues a retry with the same parameters (Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`); the retry's system attributes
``failed_trial`` and ``retry_history`` point at the original.  The dead trial keeps the steps it
reported, and ADSO still uses them as observations.  Optuna's journal storage has no heartbeats:
a killed worker's trial stays RUNNING there.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from optuna_adso import records
from optuna_adso.validation import as_optional_int

DEFAULT_SQLITE_PATH = "adso.db"
"""Where ``open_storage(None)`` keeps studies: this file in the current working directory."""

SQLITE_TIMEOUT_S = 60
"""How long an SQLite writer waits for another process's lock before giving up."""

SERVER_POOL_RECYCLE_S = 1800
"""Reconnect server connections older than this (MySQL drops idle ones after ``wait_timeout``)."""

FAIL_REASON_ATTR = records.FAIL_REASON
"""Trial system attribute: why the objective failed (set by :func:`record_failures`)."""

STALE_REASON_PREFIX = records.STALE_REASON_PREFIX
"""Study system attribute ``<prefix><trial number>``: why a trial was failed for a stale heartbeat.

A trial that the heartbeat check fails is already finished when the callback runs, so its own
attributes can no longer be written; the reason goes to the study's."""

_JOURNAL_PREFIX = "journal:"
_EXPECTED = (
    "expected None, an Optuna storage object, 'sqlite:///path.db', "
    "'postgresql://user[:password]@host[:port]/database', "
    "'mysql+pymysql://user[:password]@host[:port]/database', 'journal:path' or a path ending in '.log'"
)


def open_storage(
    url: str | BaseStorage | None = None,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> BaseStorage:
    """The storage for ``url``, with dropped-connection recovery and crash retries on RDB storages.

    Args:
        url: see the module docstring; ``None`` is the SQLite file :data:`DEFAULT_SQLITE_PATH`.
        heartbeat_interval: seconds between a running trial's heartbeats (RDB only); ``None``
            turns heartbeats, and with them crash detection, off.
        grace_period: seconds without a heartbeat after which a running trial counts as dead;
            ``None`` is Optuna's default, twice ``heartbeat_interval``.  Must exceed
            ``heartbeat_interval``, or live trials would be failed.
        max_retry: how many times a dead trial is re-run with the same parameters; ``None`` or 0
            only marks it failed.  (Unlimited retries are not offered: a trial that kills its
            worker every time would loop forever.)
    """
    interval, grace, retries = _check_options(heartbeat_interval, grace_period, max_retry)
    if isinstance(url, BaseStorage):
        return url
    if url is None:
        url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if not isinstance(url, str):
        raise TypeError(f"storage: {_EXPECTED}; got {type(url).__name__} {url!r}")
    text = url.strip()
    if not text:
        raise ValueError(f"storage: {_EXPECTED}; got an empty string")
    if text.startswith(_JOURNAL_PREFIX) or ("://" not in text and text.endswith(".log")):
        return _journal(text)
    rdb_url, engine_kwargs = _rdb_url_and_engine(text)
    from sqlalchemy.exc import NoSuchModuleError, OperationalError

    with warnings.catch_warnings():  # heartbeats and the retry callback are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = _RecordAndRetry(retries, grace or 2 * interval) if interval else None
        try:
            return RDBStorage(
                rdb_url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace if interval else None,
                heartbeat_stale_trial_callback=callback,
            )
        except (NoSuchModuleError, ImportError) as exc:
            raise ValueError(
                f"storage: no database driver for {_redacted(rdb_url)} ({exc}); use "
                "postgresql+psycopg2:// or mysql+pymysql:// (both installed), or install the driver"
            ) from None
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise ConnectionError(f"storage: cannot connect to {_redacted(rdb_url)}: {reason}") from exc


class _RecordAndRetry(RetryHeartbeatStaleTrialCallback):
    """Optuna's stale-trial retry (same parameters, ``failed_trial``/``retry_history`` links),
    after writing down why the trial failed."""

    def __init__(self, max_retry: int, grace_period: int) -> None:
        super().__init__(max_retry=max_retry, inherit_intermediate_values=False)
        self.max_retry = max_retry
        self.grace_period = grace_period

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        reason = {
            "reason": f"no heartbeat for more than {self.grace_period} s: the worker died or hung",
            "retried": len(trial.system_attrs.get("retry_history", [])) < self.max_retry,
        }
        records.write_stale_reason(study, trial.number, reason)
        if self.max_retry > 0:
            super().__call__(study, trial)


def record_failures(objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
    """Wrap an objective so that a failure leaves its reason in the trial's system attributes.

    Optuna 5 only logs why a trial failed; with many workers on many machines the log is far
    away, so the reason (the exception, or the non-finite value returned) is stored as
    :data:`FAIL_REASON_ATTR`.  Pruning is not a failure and passes through untouched.
    """

    @functools.wraps(objective)
    def wrapped(trial: optuna.Trial) -> Any:
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            _note(trial, _describe(exc))
            raise
        if isinstance(value, (int, float)) and not math.isfinite(float(value)):
            _note(trial, f"the objective returned {value!r}")
        return value

    return wrapped


fail_reason = records.fail_reason


def _note(trial: optuna.Trial, reason: str) -> None:
    if isinstance(trial, optuna.Trial):  # not a FixedTrial or FrozenTrial used for a dry run
        records.write_fail_reason(trial, reason)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:1997] + "..."


def _check_options(
    heartbeat_interval: Any, grace_period: Any, max_retry: Any
) -> tuple[int | None, int | None, int]:
    interval = as_optional_int(heartbeat_interval, "heartbeat_interval (seconds)", 1)
    grace = as_optional_int(grace_period, "grace_period (seconds)", 1)
    retries = as_optional_int(max_retry, "max_retry", 0) or 0
    if grace is not None and interval is not None and grace <= interval:
        raise ValueError(
            f"grace_period ({grace} s) must exceed heartbeat_interval ({interval} s); otherwise a "
            "live trial between two heartbeats would be declared dead"
        )
    return interval, grace, retries


def _journal(text: str) -> JournalStorage:
    path = text[len(_JOURNAL_PREFIX) :] if text.startswith(_JOURNAL_PREFIX) else text
    if path.startswith("//"):  # tolerate journal:///abs/path like the sqlite form
        path = path[2:]
    if not path:
        raise ValueError(f"storage: journal storage needs a file path, e.g. 'journal:study.log'; got {text!r}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"storage: the journal file's directory {parent!r} does not exist (from {text!r})")
    return JournalStorage(JournalFileBackend(path))


def _rdb_url_and_engine(text: str) -> tuple[str, dict[str, Any]]:
    """The SQLAlchemy URL (bare mysql:// gets the pymysql driver) and engine options."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in text:
        raise ValueError(f"storage: {_EXPECTED}; got {text!r}")
    scheme, rest = text.split("://", 1)
    backend, _, driver = scheme.lower().partition("+")
    if backend == "postgres":  # the spelling Heroku and libpq users type; SQLAlchemy 2 refuses it
        backend = "postgresql"
    if backend in ("mysql", "mariadb") and not driver and importlib.util.find_spec("MySQLdb") is None:
        driver = "pymysql"  # SQLAlchemy's default MySQL driver (mysqlclient) is not installed
    if backend == "postgresql" and not driver and importlib.util.find_spec("psycopg") is None:
        driver = "psycopg2"  # SQLAlchemy 2.1's default is psycopg 3; psycopg2 is what we ship
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise ValueError(f"storage: unsupported database {scheme!r} in {text!r}; {_EXPECTED}")
    scheme = backend + (f"+{driver}" if driver else "")
    url = f"{scheme}://{rest}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"storage: malformed URL {text!r} ({exc}); {_EXPECTED}") from None
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                f"storage: an SQLite URL needs a file, e.g. 'sqlite:///adso.db', got {text!r} "
                "(an in-memory database cannot be shared by workers)"
            )
        parent = os.path.dirname(os.path.abspath(parsed.database))
        if not os.path.isdir(parent):
            raise ValueError(f"storage: the SQLite file's directory {parent!r} does not exist (from {text!r})")
        return url, {"pool_pre_ping": True, "connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    if not parsed.host or not parsed.database:
        raise ValueError(
            f"storage: a {backend} URL needs a host and a database, e.g. "
            f"'{scheme}://user@127.0.0.1/optuna', got {text!r}"
        )
    if driver:
        module = {"pymysql": "pymysql", "psycopg2": "psycopg2", "psycopg": "psycopg", "mysqldb": "MySQLdb"}
        name = module.get(driver.lower())
        if name is not None and importlib.util.find_spec(name) is None:
            raise ValueError(f"storage: {text!r} needs the Python package for driver {driver!r}; pip install it")
    return url, {"pool_pre_ping": True, "pool_recycle": SERVER_POOL_RECYCLE_S}


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
