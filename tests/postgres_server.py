"""A throwaway PostgreSQL server for the tests (fixture ``postgres_url``).

The session-scoped fixture runs ``initdb`` into a temporary directory, starts the server on a free
port of 127.0.0.1 (trust authentication, fsync off), creates an empty database and yields its URL,
``postgresql+psycopg://postgres@127.0.0.1:PORT/neural_canvas_test``. The URL names the psycopg 3
driver (the test extras' driver) because SQLAlchemy reads a bare ``postgresql://`` as psycopg2
before version 2.1. The server is stopped and the directory removed when the session
ends.

The server binaries are looked up on PATH, then under Debian's ``/usr/lib/postgresql/*/bin``
(newest version first). PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` user that Debian's package creates. Without the binaries the fixture skips its tests,
except in CI (``CI`` set), where it fails: there they must run.

Registered as a plugin in tests/conftest.py, so any test module can ask for ``postgres_url``.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "postgres"
DATABASE = "neural_canvas_test"
START_TIMEOUT_S = 30


def _bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    versions = [d for d in versions if (d / "pg_ctl").exists()]
    numbers = {d: [int(n) for n in re.findall(r"\d+", d.parent.name)] for d in versions}
    return max(versions, key=lambda d: numbers[d], default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess keyword arguments that run a command as ``account`` (None: as ourselves)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(command: list[str], cwd: Path, account: pwd.struct_passwd | None) -> None:
    done = subprocess.run(
        command, check=False, cwd=cwd, capture_output=True, text=True,
        timeout=START_TIMEOUT_S + 30,
        **_run_as(account),
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no server log: {error})"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty database on a PostgreSQL server started for this test session."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; "
            "install Debian's postgresql package"
        )
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{message} (CI must run the PostgreSQL tests, not skip them)")
        pytest.skip(message)

    account = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no 'postgres' user to run PostgreSQL as")

    root = Path(tempfile.mkdtemp(prefix="neural-canvas-postgres-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if account is not None:
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = _free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
              "--encoding=UTF8", "--locale=C"], root, account)
        options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(sockets))} -c fsync=off"
        try:
            started = True  # even a failed start may leave a server behind: stop it below
            _run([*pg_ctl, "-w", "-t", str(START_TIMEOUT_S), "-l", str(log), "-o", options,
                  "start"], root, account)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"PostgreSQL did not start (waited up to {START_TIMEOUT_S} s): {error}\n"
                        f"server log (last lines):\n{_log_tail(log)}")
        _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER,
              DATABASE], root, account)
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=False, cwd=root,
                           capture_output=True, timeout=60, **_run_as(account))
        shutil.rmtree(root, ignore_errors=True)
