"""Private files: what holds payment data or keys is readable by the bridge's user alone.

The data directory is 0700; the SQLite database, its -wal, -shm and -journal, `master.key` and
`dev-project.json` are 0600. Files are created with those modes from their first byte; a file or
directory an older version left readable is tightened at start (and the caller logs it), never
refused: the fix needs no operator.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Group and others: any of these bits makes a file or directory readable by someone else.
_SHARED = stat.S_IRWXG | stat.S_IRWXO


def private_dir(path: Path) -> bool:
    """Create `path` 0700 (missing parents too), or tighten it; True when it had to be tightened."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return tighten(path, PRIVATE_DIR)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist; an existing file is left as it is."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


def tighten(path: Path, mode: int) -> bool:
    """Give `path` `mode` if group or others have any access to it; True when it was changed."""
    try:
        current = path.stat().st_mode
    except FileNotFoundError:
        return False
    if not current & _SHARED:
        return False
    path.chmod(mode)
    return True
