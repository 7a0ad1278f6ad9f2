"""Files and directories that hold identifiable data: readable by their owner only.

The data directory is 700 and the registry, the warehouse, exports of
records and FHIR resources, and import reports (which quote rejected values)
are 600, whatever the process's umask and whether the directory existed
before (``careloop init`` into an existing directory tightens it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 700; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def restrict(path: Path) -> None:
    """Make an existing file 600 (a file another library created, e.g. a database)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode != PRIVATE_FILE_MODE:
        path.chmod(PRIVATE_FILE_MODE)


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 600 if it does not exist (before a library opens it:
    SQLite gives its -wal and -shm files the database file's mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        restrict(path)


def open_private(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> IO[str]:
    """Open ``path`` for writing, created (or truncated) with mode 600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)  # an existing file keeps its mode otherwise
    return os.fdopen(fd, mode, encoding=encoding)


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8), the file 600."""
    with open_private(path) as handle:
        handle.write(text)
