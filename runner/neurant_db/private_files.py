"""Files only their owner may read: cold-storage exports, tenant snapshots and erasure ledgers
hold end users' messages, identities or credentials, so they are written 0600 in folders
made 0700, whatever the process umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_file(path: Path) -> BinaryIO:
    """`path` opened for writing (created, or truncated), readable by its owner only. An
    existing file is given the private mode too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def private_dir(path: Path, *, exist_ok: bool = True) -> None:
    """Create folder `path` (and missing parents, which keep the umask's mode) as 0700. An
    existing folder is left as its owner set it: it may be a shared archive root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not exist_ok:
            raise
        return
    path.chmod(DIR_MODE)  # mkdir's mode is masked by the umask
