"""The one way edgeghost writes a file: into a temp file beside the target, then ``os.replace``.

A reader never sees a half-written checkpoint, JSON, PNG or export; an interrupted write leaves only the old
file (or nothing). Every module that writes a result goes through :func:`atomic_path` or its wrappers.
Imports nothing from edgeghost but :mod:`edgeghost.errors`, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import EdgeGhostError


class UnwritableError(EdgeGhostError):
    """The target folder cannot be created or written (read-only, /proc, no permission)."""


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents); a folder that cannot be made raises :class:`UnwritableError` with one
    clear line instead of a traceback deep in a writer."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UnwritableError(f"cannot create folder {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK):
        raise UnwritableError(f"folder {path} is not writable")
    return path


def check_writable(path: str | Path) -> Path:
    """Fail early, with one line, when ``path`` (a folder that may not exist yet) could not be created or
    written — without creating anything."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnwritableError(f"{path} exists and is not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK) or str(probe.resolve()).startswith(("/proc", "/sys")):
        raise UnwritableError(f"cannot write to {path}: {probe} is not a writable folder")
    return path


def current_umask() -> int:
    """This process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed.

    ``suffix`` keeps the extension writers look at (matplotlib picks the format from it); default: the
    target's own suffix.
    """
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                                        dir=path.parent)
    except OSError as err:
        raise UnwritableError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; the result gets the mode any new file gets here
            tmp.chmod(0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """JSON with a trailing newline; non-JSON values (paths, numpy scalars) become strings or numbers."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
