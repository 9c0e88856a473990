"""One writer per run folder: the process that trains into a folder holds an exclusive lock.

The lock is an OS file lock (``flock`` on POSIX, ``LockFileEx`` on Windows, through the
``filelock`` library) on ``.writer.lock`` inside the run folder. The operating system drops it
when its holder dies, however it dies, so a stale lock of a killed process is simply taken
over by the next writer. Beside it, ``.writer.json`` says who holds it (PID, host, since
when), so a refused writer can name the holder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from engine.errors import UserError
from engine.fileio import atomic_write_bytes, read_json_object

LOCK_FILE = ".writer.lock"
OWNER_FILE = ".writer.json"


class RunFolderBusy(UserError):
    """Another live process is writing the run folder."""


class RunLock:
    """The exclusive right to write one run folder.

    Args:
        folder: The run folder (created if missing).

    Use as a context manager, or call :meth:`acquire` and :meth:`release`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock: FileLock | None = None
        self._noted = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._lock is not None and self._lock.is_locked

    def try_acquire(self, note_owner: bool = True) -> bool:
        """Take the lock if nobody holds it; never waits. Returns whether it was taken.

        Args:
            note_owner: Write ``.writer.json`` naming this process (off for a quick probe).
        """
        if self.held:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return False
        self._lock = lock
        if not note_owner:
            return True
        self._noted = True
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                 "command": " ".join(sys.argv[:3])}
        atomic_write_bytes(self.folder / OWNER_FILE, json.dumps(owner).encode("utf-8"))
        return True

    def acquire(self) -> None:
        """Take the lock or refuse.

        Raises:
            RunFolderBusy: A live process holds it; the message names its PID.
        """
        try:
            taken = self.try_acquire()
        except OSError as exc:
            raise UserError(f"{self.folder}: cannot lock the run folder: {exc.strerror or exc}") from None
        if not taken:
            raise RunFolderBusy(busy_message(self.folder))

    def release(self) -> None:
        """Give the lock up (the owner note goes with it)."""
        if self.held:
            assert self._lock is not None
            if self._noted:
                (self.folder / OWNER_FILE).unlink(missing_ok=True)
            self._lock.release()
        self._lock, self._noted = None, False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def owner(folder: Path) -> dict[str, Any]:
    """What ``.writer.json`` says of the current (or last) holder; ``{}`` when unreadable."""
    return read_json_object(Path(folder) / OWNER_FILE)


def busy_message(folder: Path) -> str:
    """One line saying which process writes ``folder`` and what to do."""
    holder = owner(folder)
    pid = holder.get("pid")
    who = f"process {pid}" if isinstance(pid, int) else "another process"
    host = holder.get("host")
    if host and host != socket.gethostname():
        who += f" on {host}"
    since = holder.get("since")
    when = f" since {time.strftime('%H:%M:%S', time.localtime(since))}" if isinstance(since, (int, float)) else ""
    return (f"{folder}: {who} is writing this run folder{when}; wait for it to finish or stop it "
            f"(Ctrl+C, or stop it in the app), then try again")


def is_being_written(folder: Path) -> bool:
    """Whether a live process holds ``folder``'s lock (a quick try, released at once)."""
    folder = Path(folder)
    if not (folder / LOCK_FILE).exists():
        return False
    probe = RunLock(folder)
    try:
        if probe.try_acquire(note_owner=False):
            probe.release()
            return False
    except OSError:
        return False
    return True
