"""``optuna_adso.storage`` on its own: what each URL form opens, the errors for bad ones, the
heartbeat options, and the failure records.

The multi-process behaviour (workers sharing a server, a SIGKILLed worker's trial being retried)
is in test_distributed.py and test_crash.py; test_fuzz.py only checks that bad URLs raise an
error mentioning ``storage``.  Here each message is checked for what it says was expected.
"""

from __future__ import annotations

import importlib.util
import json
import math
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.storages import InMemoryStorage, JournalStorage, RDBStorage
from optuna.trial import TrialState

from optuna_adso import storage as storage_mod
from optuna_adso.storage import (
    DEFAULT_SQLITE_PATH,
    FAIL_REASON_ATTR,
    SERVER_POOL_RECYCLE_S,
    SQLITE_TIMEOUT_S,
    STALE_REASON_PREFIX,
    fail_reason,
    open_storage,
    record_failures,
)

EXPECTED = "expected None, an Optuna storage object, 'sqlite:///path.db'"


def _new_study(storage) -> optuna.Study:
    return optuna.create_study(study_name=f"s-{uuid.uuid4().hex[:8]}", storage=storage)


# --- what each form opens ------------------------------------------------------------------------


def test_none_is_the_sqlite_file_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_storage(None)
    assert isinstance(storage, RDBStorage)
    assert storage.url == f"sqlite:///{DEFAULT_SQLITE_PATH}" == "sqlite:///adso.db"
    _new_study(storage)
    assert (tmp_path / "adso.db").is_file()
    assert storage.engine_kwargs == {"pool_pre_ping": True, "connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    assert storage.engine.pool._pre_ping
    # heartbeats on by default: 60 s, Optuna's grace (twice that), 3 retries
    assert storage.heartbeat_interval == 60 and storage.grace_period is None
    callback = storage.failed_trial_callback
    assert isinstance(callback, storage_mod._RecordAndRetry)
    assert (callback.max_retry, callback.grace_period) == (3, 120)


def test_sqlite_url_with_heartbeat_options(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(f"  {url}  ", heartbeat_interval=5, grace_period=30, max_retry=1)
    assert isinstance(storage, RDBStorage) and storage.url == url
    assert (storage.heartbeat_interval, storage.grace_period) == (5, 30)
    assert (storage.failed_trial_callback.max_retry, storage.failed_trial_callback.grace_period) == (1, 30)
    study = _new_study(storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    assert len(again.trials) == 2


def test_heartbeat_off_means_no_grace_and_no_callback(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat_interval=None, grace_period=None)
    assert storage.heartbeat_interval is None and storage.grace_period is None
    assert storage.failed_trial_callback is None
    assert storage.engine.pool._pre_ping  # connections are still checked


@pytest.mark.parametrize("form", ["journal:{p}", "{p}", "journal://{p}"], ids=["journal-prefix", "dot-log", "journal-slashes"])
def test_journal_forms_open_a_journal_file(tmp_path: Path, form: str) -> None:
    path = tmp_path / "study.log"
    storage = open_storage(form.format(p=path))
    assert isinstance(storage, JournalStorage)
    study = _new_study(storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert path.is_file() and path.stat().st_size > 0
    reopened = optuna.load_study(study_name=study.study_name, storage=open_storage(f"journal:{path}"))
    assert len(reopened.trials) == 1


def test_relative_log_path_is_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _new_study(open_storage("runs.log"))
    assert (tmp_path / "runs.log").is_file()


def test_a_storage_object_is_returned_as_it_is() -> None:
    for storage in (InMemoryStorage(), optuna.storages.get_storage(None)):
        assert open_storage(storage) is storage
    with pytest.raises(ValueError, match="grace_period"):  # the options are still checked
        open_storage(InMemoryStorage(), heartbeat_interval=10, grace_period=10)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@db.example/optuna", "postgresql"),
        ("POSTGRES://u@db.example/optuna", "postgresql"),
        ("postgresql://u@db.example/optuna", "postgresql"),
        ("postgres+psycopg2://u@db.example/optuna", "postgresql+psycopg2"),
        ("mysql://root:pw@db.example:3306/optuna", "mysql"),
        ("mariadb://root@db.example/optuna", "mariadb"),
        ("mysql+pymysql://root@db.example/optuna", "mysql+pymysql"),
    ],
)
def test_server_url_spellings_are_normalised(url: str, expected: str) -> None:
    rdb_url, engine_kwargs = storage_mod._rdb_url_and_engine(url)
    default_driver = {
        "postgresql": "" if importlib.util.find_spec("psycopg") else "+psycopg2",
        "mysql": "" if importlib.util.find_spec("MySQLdb") else "+pymysql",
        "mariadb": "" if importlib.util.find_spec("MySQLdb") else "+pymysql",
    }
    scheme = expected if "+" in expected else expected + default_driver[expected]
    assert rdb_url == f"{scheme}://{url.split('://', 1)[1]}"
    assert engine_kwargs == {"pool_pre_ping": True, "pool_recycle": SERVER_POOL_RECYCLE_S}


def test_bare_mysql_gets_pymysql_when_mysqlclient_is_absent() -> None:
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed; SQLAlchemy's default MySQL driver is then used")
    assert storage_mod._rdb_url_and_engine("mysql://root@h/db")[0] == "mysql+pymysql://root@h/db"
    assert storage_mod._rdb_url_and_engine("mariadb://root@h/db")[0] == "mariadb+pymysql://root@h/db"


# --- bad URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", f"storage: {EXPECTED}"),
        ("   ", "got an empty string"),
        ("nonsense", f"storage: {EXPECTED}"),
        ("redis://localhost/0", "storage: unsupported database 'redis' in 'redis://localhost/0'; expected None"),
        ("oracle+cx://u@h/db", "unsupported database 'oracle+cx'"),
        ("sqlite://", "an SQLite URL needs a file, e.g. 'sqlite:///adso.db', got 'sqlite://'"),
        ("sqlite:///:memory:", "(an in-memory database cannot be shared by workers)"),
        ("sqlite:///{tmp}/no/such/dir/x.db", "the SQLite file's directory '{tmp}/no/such/dir' does not exist"),
        ("journal:", "journal storage needs a file path, e.g. 'journal:study.log'; got 'journal:'"),
        ("journal:{tmp}/missing/s.log", "the journal file's directory '{tmp}/missing' does not exist"),
        ("{tmp}/missing/s.log", "the journal file's directory '{tmp}/missing' does not exist"),
        ("postgresql://user@/db", "a postgresql URL needs a host and a database, e.g. 'postgresql"),
        ("postgresql://", "needs a host and a database"),
        ("mysql+pymysql://root@127.0.0.1", "a mysql URL needs a host and a database, e.g. "
                                           "'mysql+pymysql://user@127.0.0.1/optuna'"),
        ("postgresql://u@h:port/db", "storage: malformed URL 'postgresql://u@h:port/db'"),
        ("mysql+nodriver://u@h/db", "no database driver for mysql+nodriver://u@h/db"),
    ],
)
def test_bad_urls_say_what_was_expected(tmp_path: Path, url: str, expected: str) -> None:
    url, expected = url.format(tmp=tmp_path), expected.format(tmp=tmp_path)
    with pytest.raises(ValueError) as info:
        open_storage(url)
    assert expected in str(info.value), str(info.value)
    assert not list(tmp_path.iterdir())  # nothing was created


@pytest.mark.parametrize("url", [42, ["sqlite:///a.db"], b"sqlite:///a.db"])
def test_a_non_string_url_is_a_type_error(url) -> None:
    with pytest.raises(TypeError, match=f"storage: {EXPECTED}.*; got {type(url).__name__} "):
        open_storage(url)


def test_unreachable_server_is_a_connection_error_without_the_password() -> None:
    pytest.importorskip("psycopg2")
    with pytest.raises(ConnectionError) as info:
        open_storage("postgresql://adso:s3cret-pw@127.0.0.1:1/optuna")  # nothing listens on port 1
    message = str(info.value)
    assert message.startswith("storage: cannot connect to postgresql+psycopg2://adso:***@127.0.0.1:1/optuna: ")
    assert "s3cret-pw" not in message and "\n" not in message


# --- heartbeat options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "grace", "retries", "expected"),
    [
        (60, None, 3, (60, None, 3)),
        (5, 6, 0, (5, 6, 0)),
        (None, 10, None, (None, 10, 0)),  # no heartbeat: the grace period does not matter
        (None, None, None, (None, None, 0)),
    ],
)
def test_check_options_accepts(interval, grace, retries, expected) -> None:
    assert storage_mod._check_options(interval, grace, retries) == expected


@pytest.mark.parametrize(
    ("interval", "grace", "retries", "expected"),
    [
        (60, 60, 3, "grace_period (60 s) must exceed heartbeat_interval (60 s); otherwise a live trial"),
        (60, 30, 3, "grace_period (30 s) must exceed heartbeat_interval (60 s)"),
        (0, None, 3, "heartbeat_interval (seconds) must be None or a positive int, got 0"),
        (1.5, None, 3, "heartbeat_interval (seconds) must be None or a positive int, got 1.5"),
        (True, None, 3, "heartbeat_interval (seconds) must be None or a positive int, got True"),
        (60, -1, 3, "grace_period (seconds) must be None or a positive int, got -1"),
        (60, "120", 3, "grace_period (seconds) must be None or a positive int, got '120'"),
        (60, None, -1, "max_retry must be None or a non-negative int, got -1"),
        (60, None, math.inf, "max_retry must be None or a non-negative int, got inf"),
    ],
)
def test_check_options_rejects(interval, grace, retries, expected) -> None:
    with pytest.raises(ValueError) as info:
        open_storage(InMemoryStorage(), heartbeat_interval=interval, grace_period=grace, max_retry=retries)
    assert expected in str(info.value), str(info.value)


# --- failure records -----------------------------------------------------------------------------


def _run_one(objective, **optimize_kwargs) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    study = optuna.create_study()
    study.optimize(record_failures(objective), n_trials=1, **optimize_kwargs)
    return study, study.trials[0]


def test_record_failures_stores_the_exception_and_reraises() -> None:
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise RuntimeError("CUDA out of memory at step 300")

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        _run_one(objective)
    study, trial = _run_one(objective, catch=(RuntimeError,))
    assert trial.state == TrialState.FAIL
    assert trial.system_attrs[FAIL_REASON_ATTR] == "RuntimeError: CUDA out of memory at step 300"
    assert FAIL_REASON_ATTR == "adso:fail_reason"
    assert fail_reason(study, trial) == "RuntimeError: CUDA out of memory at step 300"


def test_a_long_exception_text_is_cut_to_2000_characters() -> None:
    def objective(trial: optuna.Trial) -> float:
        raise ValueError("x" * 5000)

    _, trial = _run_one(objective, catch=(ValueError,))
    reason = trial.system_attrs[FAIL_REASON_ATTR]
    assert len(reason) == 2000 and reason.startswith("ValueError: xxx") and reason.endswith("x...")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_return_is_recorded(value: float) -> None:
    study, trial = _run_one(lambda t: value)
    if math.isnan(value):
        assert trial.state == TrialState.FAIL  # Optuna fails it; the reason says why (Optuna keeps inf)
    assert trial.system_attrs[FAIL_REASON_ATTR] == f"the objective returned {value!r}"
    assert fail_reason(study, trial) == f"the objective returned {value!r}"


def test_a_finite_return_and_pruning_pass_through_untouched() -> None:
    study, trial = _run_one(lambda t: 1.5)
    assert trial.state == TrialState.COMPLETE and trial.value == 1.5
    assert FAIL_REASON_ATTR not in trial.system_attrs and fail_reason(study, trial) is None

    def pruned(trial: optuna.Trial) -> float:
        trial.report(3.0, 10)
        raise optuna.TrialPruned("stopped early")

    study, trial = _run_one(pruned)  # not caught: pruning is no failure
    assert trial.state == TrialState.PRUNED and trial.intermediate_values == {10: 3.0}
    assert FAIL_REASON_ATTR not in trial.system_attrs and fail_reason(study, trial) is None


def test_record_failures_keeps_the_name_and_tolerates_a_fixed_trial() -> None:
    def my_objective(trial) -> float:
        if trial.suggest_float("x", 0, 1) > 0.5:
            raise KeyError("boom")
        return math.nan

    wrapped = record_failures(my_objective)
    assert wrapped.__name__ == "my_objective" and wrapped.__wrapped__ is my_objective
    assert math.isnan(wrapped(optuna.trial.FixedTrial({"x": 0.1})))  # a dry run: nothing to write to
    with pytest.raises(KeyError, match="boom"):
        wrapped(optuna.trial.FixedTrial({"x": 0.9}))


@pytest.mark.parametrize("max_retry", [2, 0])
def test_stale_trial_callback_records_the_reason_and_retries(max_retry: int) -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    study.tell(trial, state=TrialState.FAIL)
    dead = study.trials[0]
    storage_mod._RecordAndRetry(max_retry, grace_period=30)(study, dead)

    stored = study._storage.get_study_system_attrs(study._study_id)
    assert json.loads(stored[f"{STALE_REASON_PREFIX}{dead.number}"]) == {
        "reason": "no heartbeat for more than 30 s: the worker died or hung", "retried": max_retry > 0}
    assert fail_reason(study, dead) == "no heartbeat for more than 30 s: the worker died or hung"
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    if max_retry:
        assert len(retries) == 1 and retries[0].state == TrialState.WAITING
        assert retries[0].params == dead.params and retries[0].system_attrs["retry_history"] == [dead.number]
    else:
        assert retries == []


def test_fail_reason_prefers_the_trial_attribute_and_is_none_when_unknown() -> None:
    study = optuna.create_study()
    running = study.ask()
    study._storage.set_trial_system_attr(running._trial_id, FAIL_REASON_ATTR, "from the trial")
    study.tell(running, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)
    study._storage.set_study_system_attr(study._study_id, f"{STALE_REASON_PREFIX}0", json.dumps({"reason": "stale"}))
    first, second = study.trials
    assert fail_reason(study, first) == "from the trial"
    assert fail_reason(study, second) is None


# --- the real servers ----------------------------------------------------------------------------

SERVER_URLS = {
    "postgresql": ("psycopg2", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"]),
    "mariadb": ("pymysql", ["mysql://root:@127.0.0.1:3306/test"]),
}


@pytest.mark.parametrize("kind", sorted(SERVER_URLS))
def test_open_storage_on_a_real_server_pre_pings(kind: str) -> None:
    driver, urls = SERVER_URLS[kind]
    pytest.importorskip(driver)
    errors = []
    for url in urls:  # bare spellings: the driver is filled in by open_storage
        try:
            storage = open_storage(url, heartbeat_interval=5, grace_period=30)
            break
        except ConnectionError as exc:
            errors.append(str(exc))
    else:
        pytest.skip(f"{kind} server not reachable ({'; '.join(errors)}); run scripts/ensure_services.sh")
    try:
        assert isinstance(storage, RDBStorage)
        assert storage.engine.dialect.driver == driver
        assert storage.engine.pool._pre_ping and storage.engine.pool._recycle == SERVER_POOL_RECYCLE_S
        assert (storage.heartbeat_interval, storage.grace_period) == (5, 30)
        study = _new_study(storage)
        try:
            study.optimize(record_failures(lambda t: t.suggest_float("x", 0, 1) + math.nan), n_trials=1)
            trial = study.trials[0]
            assert trial.state == TrialState.FAIL and fail_reason(study, trial) == "the objective returned nan"
        finally:
            optuna.delete_study(study_name=study.study_name, storage=storage)
    finally:
        storage.engine.dispose()
