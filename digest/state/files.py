"""The state file on disk: its two locks, what its first bytes say, and its creation.

Both locks are taken on the database file itself, so every name it has (a symlink, a hard
link, a bind mount) meets the same lock:

- the **writer lock** is flock(2) on the file: one store writes at a time, in this process
  or any other;
- the **daemon lock** is an open-file-description lock (fcntl F_OFD_SETLK) on one byte far
  past the bytes SQLite locks: one `digest serve` per database, beside which `digest run`
  still works.

Both belong to an open file description and are independent of the POSIX record locks
(fcntl F_SETLK) SQLite takes on the same file. POSIX locks have a pitfall, though: closing
*any* descriptor of a file drops every POSIX lock the process holds on it, SQLite's own
included. So a descriptor opened here is closed only once no store of this process has the
file open; until then it is parked and reused (`acquire`, `release`), as SQLite defers
closing its own descriptors. Nothing else in digest opens the state file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StateError, StateLockedError

#: the first 16 bytes of every SQLite 3 database
SQLITE_HEADER = b"SQLite format 3\x00"
#: the byte the daemon lock covers: far from the bytes SQLite locks (1 GiB to 1 GiB + 512)
DAEMON_BYTE = 1 << 62
#: Linux has open-file-description locks; elsewhere the daemon lock is a file beside
_OFD = hasattr(fcntl, "F_OFD_SETLK")


@dataclass(frozen=True, slots=True)
class Handle:
    """A descriptor of a state file, held from before a store connects until after it
    closes."""

    fd: int
    #: (device, inode): which file, whatever name it was opened by
    key: tuple[int, int]
    writable: bool


@dataclass(slots=True)
class _Inode:
    users: int = 0
    idle: list[tuple[int, bool]] = field(default_factory=list)


_inodes: dict[tuple[int, int], _Inode] = {}
_mutex = threading.Lock()


def acquire(path: Path, *, writable: bool) -> Handle:
    """A descriptor of the file at `path` (a parked one when there is one). Raises OSError,
    IsADirectoryError for a directory."""
    with _mutex:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        key = (st.st_dev, st.st_ino)
        inode = _inodes.get(key)
        if inode is not None:
            for i, (fd, can_write) in enumerate(inode.idle):
                if can_write or not writable:
                    del inode.idle[i]
                    inode.users += 1
                    return Handle(fd, key, can_write)
        fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)
        opened = os.fstat(fd)
        key = (opened.st_dev, opened.st_ino)  # the file opened, if it was replaced meanwhile
        _inodes.setdefault(key, _Inode()).users += 1
        return Handle(fd, key, writable)


def release(handle: Handle) -> None:
    """Give a descriptor back; it is closed when no store of this process uses the file."""
    with _mutex:
        inode = _inodes[handle.key]
        inode.users -= 1
        inode.idle.append((handle.fd, handle.writable))
        if inode.users == 0:
            for fd, _ in inode.idle:
                os.close(fd)
            del _inodes[handle.key]


def lock_for_writing(handle: Handle) -> bool:
    """Take the writer lock; False when another store (of any process) holds it."""
    try:
        fcntl.flock(handle.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock_writing(handle: Handle) -> None:
    fcntl.flock(handle.fd, fcntl.LOCK_UN)


def names(handle: Handle) -> int:
    """How many hard links the file has."""
    return os.fstat(handle.fd).st_nlink


def refusal(handle: Handle) -> str | None:
    """Why the file's first bytes say it cannot be a state file, or None when they do not."""
    if os.fstat(handle.fd).st_size == 0:
        return (
            "it is empty (0 bytes), so it cannot be the record of what was sent; "
            "if you meant to start afresh, delete it and digest makes a new one"
        )
    if os.pread(handle.fd, len(SQLITE_HEADER), 0) != SQLITE_HEADER:
        return "it is not an SQLite database"
    return None


def create(path: Path, build: Callable[[Path], None]) -> None:
    """Make the file at `path` whole or not at all: `build` fills a temporary file beside
    it, which is then linked into place, never over a file that exists meanwhile (another
    process made it first: theirs is kept). No crash can leave an empty file at `path`.
    Raises OSError.

    The file is mode 0600 whatever the umask (mkstemp's mode, kept by the link): it holds
    subscribers' addresses and the delivery ledger. Files meant to be read by others are
    written by digest.send.write_atomic, which honours the umask."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)  # a new inode: no store of this process has it open
    tmp = Path(name)
    try:
        build(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # a file system without hard links: a rename, which could replace a file made
            # in the instant since it was found missing
            if not os.path.lexists(path):
                os.rename(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        for leftover in (tmp, tmp.with_name(f"{tmp.name}-journal")):
            leftover.unlink(missing_ok=True)


def _pid_file(path: Path) -> Path:
    return Path(f"{path}.serve.lock")


def _ofd(fd: int, command: int, kind: int) -> int:
    """One fcntl open-file-description lock call on DAEMON_BYTE; the lock type it returns."""
    layout = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid
    size = max(struct.calcsize(layout), 32)
    request = struct.pack(layout, kind, os.SEEK_SET, DAEMON_BYTE, 1, 0).ljust(size, b"\0")
    answer = fcntl.fcntl(fd, command, request)
    return int(struct.unpack_from(layout, answer)[0])


@contextmanager
def daemon_lock(path: Path) -> Iterator[None]:
    """Held for a daemon's lifetime; a second daemon on the same file, under any name, is
    refused with StateLockedError naming the first one's pid when it can be known. The pid
    is written to `<path>.serve.lock` for `digest status`."""
    if not _OFD:
        with _daemon_lock_beside(path):
            yield
        return
    try:
        handle = acquire(path, writable=True)
    except OSError as e:
        raise StateError(f"cannot lock the state file {path}: {e.strerror}") from e
    try:
        try:
            _ofd(handle.fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise StateError(f"cannot lock the state file {path}: {e.strerror}") from e
            raise _second_daemon(path, _read_pid(path)) from e
        try:
            _pid_file(path).write_text(f"{os.getpid()}\n")
        except OSError as e:
            raise StateError(f"cannot write {_pid_file(path)}: {e.strerror}") from e
        try:
            yield
        finally:
            if _read_pid(path) == os.getpid():
                _pid_file(path).unlink(missing_ok=True)
            _ofd(handle.fd, fcntl.F_OFD_SETLK, fcntl.F_UNLCK)
    finally:
        release(handle)


def serving_pid(path: Path) -> int | None:
    """The pid of the daemon holding the file's daemon lock (-1: one does, pid unknown), or
    None when none runs."""
    if not _OFD:
        return _serving_pid_beside(path)
    try:
        handle = acquire(path, writable=False)
    except OSError:
        return None
    try:
        held = _ofd(handle.fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK) != fcntl.F_UNLCK
    finally:
        release(handle)
    return (_read_pid(path) or -1) if held else None


def _read_pid(path: Path) -> int | None:
    """The pid a running daemon wrote beside this name of the file (None: none, or the
    daemon was started with another name and this file is from one that was killed)."""
    try:
        text = _pid_file(path).read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, as another user
        pass
    return int(text)


def _second_daemon(path: Path, pid: int | None) -> StateLockedError:
    who = f"pid {pid}" if pid else "pid unknown: it was started with another name of the file"
    return StateLockedError(
        f"another `digest serve` ({who}) is already running with the state file {path}; "
        "stop it first"
    )


@contextmanager
def _daemon_lock_beside(path: Path) -> Iterator[None]:
    """Without open-file-description locks: flock on `<path>.serve.lock`, per name."""
    try:
        lock = open(_pid_file(path), "a+")
    except OSError as e:
        raise StateError(f"cannot create {_pid_file(path)}: {e.strerror}") from e
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            lock.seek(0)
            text = lock.read().strip()
            raise _second_daemon(path, int(text) if text.isdigit() else None) from e
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def _serving_pid_beside(path: Path) -> int | None:
    try:
        lock = open(_pid_file(path))
    except OSError:
        return None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = lock.read().strip()
            return int(text) if text.isdigit() else -1
        return None
