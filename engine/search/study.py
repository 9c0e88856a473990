"""Opening a study: its storage (SQLite beside the trials by default, or any Optuna RDB URL
such as PostgreSQL for workers on several machines), its creation, and the checks that a
stored study is the one the project describes.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna

from engine.errors import UserError
from engine.search.sampling import make_pruner, make_sampler
from engine.search.settings import StudySettings
from engine.search.space import SearchSpace

STUDY_FILE = "study.db"
#: Seconds a connection waits for another process's write to the SQLite file.
SQLITE_TIMEOUT = 60


@dataclass
class OpenStudy:
    """A study ready for trials, with what it was opened from."""

    study: optuna.Study
    storage_url: str
    settings: StudySettings
    space: SearchSpace
    created: bool = False


def default_storage(out_dir: Path) -> str:
    """The SQLite URL of a search's own study file inside its folder."""
    return f"sqlite:///{(out_dir / STUDY_FILE).resolve()}"


def shown_url(url: str) -> str:
    """``url`` without its password, for messages and reports."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Connect to the study storage at ``url``.

    Raises:
        UserError: A malformed URL, a missing database driver, or a server that cannot be
            reached (one line naming the host).
    """
    import sqlalchemy.exc

    optuna.logging.set_verbosity(logging.WARNING)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    else:
        kwargs["connect_args"] = {"connect_timeout": 10}
    where = _where(url)
    try:
        try:
            return optuna.storages.RDBStorage(_with_installed_driver(url), engine_kwargs=kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Two workers that start together on an empty database both create Optuna's tables;
            # the second one's tables then exist: connect again.
            time.sleep(1.0)
            return optuna.storages.RDBStorage(_with_installed_driver(url), engine_kwargs=kwargs)
    except ImportError:
        scheme = urlsplit(url).scheme
        raise UserError(f"--storage {shown_url(url)}: the database driver for {scheme} is not installed (for "
                        f"PostgreSQL: pip install \"psycopg[binary]\", or pip install -e \".[postgres]\")") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise UserError(f"--storage: not a database URL ({exc}); for example "
                        f"postgresql://user:password@host:5432/database") from None
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise UserError(f"cannot reach the study storage at {where}: {reason}") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(f"the study storage at {where} cannot be used: {str(exc).splitlines()[0]}") from None


def _with_installed_driver(url: str) -> str:
    """``url`` naming PostgreSQL's psycopg 3 driver when the URL names none and psycopg2 is missing.

    SQLAlchemy's default driver for a bare ``postgresql://`` depends on its version (psycopg2
    before 2.1, psycopg 3 from 2.1); the project installs psycopg 3.
    """
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and sep and importlib.util.find_spec("psycopg2") is None \
            and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return url


def _where(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url.split("///", 1)[-1] or url
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port}" if parts.port else host


def open_study(storage_url: str, name: str, settings: StudySettings, space: SearchSpace, epochs: int,
               seed: int | None, join: bool) -> OpenStudy:
    """Create the study ``name``, or continue it when it exists with the same space and objectives.

    Args:
        storage_url: Where the study lives.
        name: The study's name.
        settings: Objectives, sampler and pruner.
        space: The search space; stored with the study, so a second project with another
            space cannot join it by mistake.
        epochs: Epochs per trial (Hyperband's largest budget).
        seed: Seed of the sampler (``None``: unseeded, as workers on several machines want).
        join: Only join a study that exists (``--join``); refuse to create one.

    Raises:
        UserError: The storage cannot be reached, the study is missing (``join``), or it
            exists with another space or other objectives.
    """
    storage = open_storage(storage_url)
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    exists = name in summaries
    if seed is not None and exists:  # a continued study draws new values, not the first trials' again
        seed += summaries[name].n_trials
    sampler, pruner = make_sampler(settings, space, seed), make_pruner(settings, epochs)
    if join and not exists:
        raise UserError(f"--join: no study named {name!r} in {shown_url(storage_url)}; start it first without "
                        f"--join (python main.py search FILE --storage URL)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                    directions=settings.directions, load_if_exists=True)
    description: dict[str, Any] = {"space": json.loads(space.key()), "objectives": settings.objective_names()}
    if "training.epochs" not in {d["target"] for d in description["space"]}:
        description["epochs"] = int(epochs)  # trials trained for other epoch counts are not comparable
    if exists:
        _check_same(study, name, description)
    else:
        study.set_user_attr("search", description)
    return OpenStudy(study, storage_url, settings, space, created=not exists)


def _check_same(study: optuna.Study, name: str, description: dict[str, Any]) -> None:
    stored = study.user_attrs.get("search")
    if isinstance(stored, dict) and "epochs" not in stored:  # a study from before epochs were recorded
        description = {k: v for k, v in description.items() if k != "epochs"}
    if stored == description:
        return
    why = "it was not made by a Neural Canvas search"
    if isinstance(stored, dict):
        if stored.get("objectives") != description["objectives"]:
            why = f"it optimizes {', '.join(stored.get('objectives') or [])}, this project " \
                  f"{', '.join(description['objectives'])}"
        elif stored.get("epochs") != description.get("epochs"):
            why = f"its trials train {stored.get('epochs')} epochs, this project {description.get('epochs')} " \
                  f"(training.epochs)"
        else:
            old = {d["target"]: d for d in stored.get("space", [])}
            new = {d["target"]: d for d in description["space"]}
            changed = sorted(t for t in old.keys() | new.keys() if old.get(t) != new.get(t))
            why = f"its search space differs at {', '.join(changed[:3])}" if changed else why
    raise UserError(f"a study named {name!r} already exists in this storage and {why}; its trials could not be "
                    f"compared with new ones: give search.name another name (or --out another folder) to start a "
                    f"new study")
