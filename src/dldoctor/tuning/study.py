"""Where trials live: an Optuna study in a storage any number of workers can share.

No storage: the study lives in memory (nothing is written). ``--storage FILE.db``
or ``sqlite:///FILE.db``: a local SQLite file (several workers on one machine).
``--storage postgresql://user:pass@host/db`` (or any SQLAlchemy URL): workers on
different machines share the study named by ``--study``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from dldoctor.core.errors import UsageError

METHODS = ("coarse-to-fine", "random", "bayes", "grid")
#: What a worker sees when another one is creating the same tables at that moment.
RACES = ("already exists", "duplicate key", "database is locked", "UNIQUE constraint failed")
INSTALL_HINT = "pip install 'dldoctor[tune]'   (or: pip install optuna)"


def require_optuna():
    """Import Optuna, or say how to install it."""
    try:
        import optuna
    except ImportError:
        raise UsageError("the hyper-parameter search needs Optuna, which is not installed",
                         hint=INSTALL_HINT + "\n(dldoctor tune --lr-finder runs the learning-rate range test "
                                             "without it.)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(storage: str | None, output: Path | None = None) -> str | None:
    """The storage URL: ``--storage`` as given (a bare path means SQLite), else a SQLite file
    beside ``--output``, else None (in memory)."""
    if storage:
        if "://" in storage:
            return storage
        return f"sqlite:///{Path(storage).expanduser().resolve()}"
    if output is not None:
        return f"sqlite:///{Path(output).expanduser().resolve().parent / 'dldoctor-tune.db'}"
    return None


def redact(url: str | None) -> str:
    """The URL without its password (for reports)."""
    if url is None:
        return "memory"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def space_fingerprint(params, method: str) -> str:
    """A short stable hash of the space and the method (a study is for one of each)."""
    body = json.dumps([[p.name, p.kind, p.low, p.high, p.log, list(map(repr, p.choices))] for p in params] + [method])
    return hashlib.sha256(body.encode()).hexdigest()[:8]


def default_study_name(target: str, params, method: str) -> str:
    stem = Path(target).stem if target else "spec"
    return f"dldoctor-{stem}-{method}-{space_fingerprint(params, method)}"


def with_driver(url: str) -> str:
    """A bare ``postgresql://`` URL with the driver that is installed.

    SQLAlchemy 2.1 reads a bare URL as psycopg 3; older versions, and the
    ``psycopg2-binary`` wheel most setups have, need ``postgresql+psycopg2://``.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    import importlib.util

    rest = url.split("://", 1)[1]
    for module, scheme in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"{scheme}://{rest}"
    return url


def _storage(optuna, url: str | None, attempts: int = 5):
    if url is None:
        return None
    url = with_driver(url)
    kwargs = {}
    if url.startswith("sqlite:///"):
        # Wait for another worker's write lock instead of failing at once.
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
        database = url[len("sqlite:///"):]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError as exc:
            raise UsageError(f"--storage {redact(url)}: the database driver is not installed ({exc})",
                             hint="For PostgreSQL: pip install psycopg2-binary") from None
        except Exception as exc:  # SQLAlchemy's connection and URL errors
            # Workers that start together race to create the tables: the loser retries.
            if any(w in str(exc) for w in RACES) and attempt + 1 < attempts:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise UsageError(f"--storage {redact(url)}: cannot open it: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0]}",
                             hint="Check the URL, e.g. sqlite:///tune.db or postgresql://user:pass@host:5432/db") \
                from None


def open_study(url: str | None, name: str, sampler, pruner, fingerprint: str, attrs: dict[str, Any]):
    """Create the study, or join it when another worker made it (same space and method only)."""
    optuna = require_optuna()
    storage = _storage(optuna, url)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
    except Exception as exc:
        raise UsageError(f"cannot create or load study {name!r} in {redact(url)}: {type(exc).__name__}: {exc}") \
            from None
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", fingerprint)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    elif stored != fingerprint:
        raise UsageError(f"study {name!r} in {redact(url)} was made for another search space or method",
                         hint="Give this search its own --study NAME (or use the same search_space and --method).")
    return study
