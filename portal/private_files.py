"""Files and directories only the portal's own user may read: the data directory, the secret
key, the SQLite database, stored objects and queue files. Modes are given at creation (0700
directories, 0600 files), so they hold under any umask (a umask only ever removes bits), and
there is no moment when a file exists with wider permissions."""

import os
from contextlib import suppress
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """`mkdir -p` that gives every directory it creates mode 0700 (os.makedirs gives the mode to
    the last one only). Directories that exist are left as they are."""
    if path.is_dir():
        return
    make_private_dirs(path.parent)
    with suppress(FileExistsError):  # another thread or process made it meanwhile
        path.mkdir(mode=DIR_MODE)


def open_private(path: Path | str, flags: int) -> int:
    """os.open with mode 0600 for a file it creates; returns the descriptor."""
    return os.open(path, flags | os.O_CLOEXEC, FILE_MODE)


def create_private_file(path: Path) -> bool:
    """Creates an empty file with mode 0600 unless one exists; True when it created it."""
    try:
        os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def write_private_file_once(path: Path, text: str) -> None:
    """Writes `text` to a new 0600 file at `path` unless one is there. The file appears whole or
    not at all (written aside, then hard-linked into place), so a process starting beside us
    reads either nothing or the whole text, and the first writer's text wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        with suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
