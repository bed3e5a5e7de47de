"""Atomic file writes: readers see the old file or the new one, never a partial one."""

import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def to_jsonable(obj):
    """Convert ``obj`` into plain JSON types, with non-finite floats as None.

    Dicts, lists and tuples are converted recursively; dict keys become ``str``.
    Numpy arrays become nested lists and numpy scalars become Python scalars. An
    object with a ``to_dict()`` method is replaced by that dict, and an
    ``os.PathLike`` by its string.

    Raises
    ------
    TypeError
        If ``obj`` contains a value of any other type.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(
        f"cannot convert {type(obj).__name__} to JSON: {obj!r:.80}. Pass numbers, "
        "strings, lists, dicts, numpy arrays or objects with to_dict()"
    )


def write_text_atomic(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically and return the path.

    The text goes to a temporary file in the same directory, which is flushed,
    fsynced and then renamed over ``path`` with ``os.replace``. Missing parent
    directories are created. On any error the temporary file is removed and an
    existing file at ``path`` is left unchanged.

    Parameters
    ----------
    path : str or os.PathLike
    text : str
    encoding : str

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    fd, tmp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _target_mode(path))
        os.replace(tmp_name, path)
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    _fsync_directory(path.parent)
    logger.debug("wrote %d bytes to %s", len(data), path)
    return path


def write_texts_atomic(texts, encoding="utf-8"):
    """Write several files so that each is atomic and the set is replaced together.

    Every text is first written and fsynced to a temporary file beside its target.
    Only when all of them are on disk are they renamed over their targets, one
    ``os.replace`` after the other. A failure while staging leaves every target
    unchanged; the renames themselves leave only the microseconds between them in
    which a reader can see a new file next to an old one.

    Parameters
    ----------
    texts : dict
        Path -> text.

    Returns
    -------
    list of pathlib.Path
    """
    staged = []
    try:
        for path, text in texts.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
            )
            staged.append((tmp_name, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode(encoding))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, _target_mode(path))
        for tmp_name, path in staged:
            os.replace(tmp_name, path)
    except BaseException:
        for tmp_name, _ in staged:
            _remove_quietly(tmp_name)
        raise
    for directory in {path.parent for _, path in staged}:
        _fsync_directory(directory)
    return [path for _, path in staged]


def json_text(obj, indent=None):
    """Serialize ``obj`` with ``to_jsonable`` and ``allow_nan=False``."""
    return json.dumps(to_jsonable(obj), allow_nan=False, indent=indent) + "\n"


def write_json_atomic(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` atomically and return the path.

    ``obj`` is converted with ``to_jsonable`` (NaN and infinities become null)
    and serialized with ``allow_nan=False`` before any file is opened, so an
    object that cannot be serialized raises and leaves ``path`` unchanged.

    Raises
    ------
    TypeError
        If ``obj`` contains a value that ``to_jsonable`` cannot convert.
    """
    text = json.dumps(to_jsonable(obj), allow_nan=False, indent=indent)
    return write_text_atomic(path, text + "\n")


def _target_mode(path):
    # mkstemp creates the file with mode 0o600, so give it the mode of the file it
    # replaces, or the mode open() would give a new file under the current umask.
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _current_umask():
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # NOTE: outside Linux the umask can only be read by setting it, which races
    # with other threads that create files in that instant.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _remove_quietly(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def _fsync_directory(directory):
    # The directory fsync makes the rename durable. Some file systems do not
    # support it, so a failure is only logged.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        logger.debug("fsync of directory %s failed: %s", directory, error)
    finally:
        os.close(fd)
