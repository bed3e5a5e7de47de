"""Disk cache of oracle solutions, keyed by the problem data and the solver settings.

An entry is one ``<key>.npz`` file holding x_star, the solver's unpolished point, the
JSON metadata of the ``Solution`` and a SHA-256 checksum of the three. It is written to
a temporary file in the same directory and renamed over the target with
``os.replace``, so a reader sees the old entry or the new one, never a partial file.

Loading verifies the checksum and the shapes, then evaluates the certificate again at
the loaded x_star. An entry that fails any of these is logged as a warning and
ignored, so the oracle solves again and overwrites it.
"""

import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from polyakcheck.certificate import certify
from polyakcheck.solution import Solution

logger = logging.getLogger(__name__)

# Environment variable with the default cache directory; unset or empty means no cache.
CACHE_ENV = "POLYAKCHECK_CACHE"

_ARRAY_KEYS = ("x_star", "cvxpy_x", "metadata", "checksum")


def resolve_cache_dir(cache_dir):
    """Return the cache directory as a Path, or None when caching is off.

    None reads ``POLYAKCHECK_CACHE``; False turns the cache off.
    """
    if cache_dir is False:
        return None
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV, "")
        if not cache_dir:
            return None
    return Path(cache_dir)


def cache_key(problem, settings, version):
    """Return the SHA-256 hex digest that identifies ``problem`` solved with ``settings``.

    The digest covers the bytes of A (for sparse A the CSR data, indices and row
    pointers, so the sparsity structure counts), b, x0, reg, loss, loss_param, the
    JSON of ``settings`` and the oracle ``version``.
    """
    digest = hashlib.sha256()

    def add(label, value):
        digest.update(label.encode())
        digest.update(b"\0")
        digest.update(value if isinstance(value, bytes) else str(value).encode())
        digest.update(b"\0")

    A = problem.A
    add("shape", A.shape)
    if problem.sparse:
        add("format", "csr")
        add("data", np.ascontiguousarray(A.data, dtype=np.float64).tobytes())
        add("indices", np.ascontiguousarray(A.indices, dtype=np.int64).tobytes())
        add("indptr", np.ascontiguousarray(A.indptr, dtype=np.int64).tobytes())
    else:
        add("format", "dense")
        add("data", np.ascontiguousarray(A, dtype=np.float64).tobytes())
    add("b", problem.b.tobytes())
    add("x0", problem.x0.tobytes())
    add("reg", repr(float(problem.reg)))
    add("loss", problem.loss)
    add("loss_param", repr(float(problem.loss_param)))
    add("settings", json.dumps(settings, sort_keys=True, default=str))
    add("version", version)
    return digest.hexdigest()


def entry_path(problem, settings, version, cache_dir):
    """Return the path of the cache entry of ``problem``, or None when caching is off."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None:
        return None
    return directory / f"{cache_key(problem, settings, version)}.npz"


def store(path, solution):
    """Write ``solution`` to the cache entry ``path`` atomically.

    A failed write is logged as a warning and leaves any existing entry unchanged,
    because the solution itself is still valid.
    """
    path = Path(path)
    info = {key: value for key, value in solution.info.items() if key != "cvxpy_x"}
    metadata = {
        "solver": solution.solver,
        "solver_status": solution.solver_status,
        "polish_steps": int(solution.polish_steps),
        "solve_seconds": float(solution.solve_seconds),
        "info": info,
    }
    x_star = np.array(solution.x_star, dtype=np.float64)
    cvxpy_x = np.array(solution.info.get("cvxpy_x", x_star), dtype=np.float64)
    metadata_text = json.dumps(metadata, sort_keys=True, default=_json_default)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_star=x_star,
        cvxpy_x=cvxpy_x,
        metadata=np.array(metadata_text),
        checksum=np.array(_checksum(x_star, cvxpy_x, metadata_text)),
    )
    temp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
        temp_name = None
        logger.debug("stored oracle cache entry %s", path)
    except OSError as exc:
        logger.warning("could not write oracle cache entry %s: %s", path, exc)
    finally:
        if temp_name is not None:
            try:
                os.unlink(temp_name)
            except OSError:
                pass


def load(problem, path):
    """Return the cached ``Solution`` of ``problem`` at ``path``, or None.

    None means a miss: no entry, or an entry that is unreadable, has a bad checksum or
    wrong shapes, or whose x_star no longer certifies. The last three are logged as
    warnings. The returned solution carries f_i_star and the certificate evaluated
    again at the loaded x_star, and ``info["cache"]`` is the entry path.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            missing = [key for key in _ARRAY_KEYS if key not in entry.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            x_star = np.array(entry["x_star"], dtype=np.float64)
            cvxpy_x = np.array(entry["cvxpy_x"], dtype=np.float64)
            metadata_text = str(entry["metadata"])
            stored_checksum = str(entry["checksum"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        _warn_corrupt(path, f"unreadable ({exc})")
        return None
    if _checksum(x_star, cvxpy_x, metadata_text) != stored_checksum:
        _warn_corrupt(path, "checksum mismatch")
        return None
    if x_star.shape != (problem.d,) or cvxpy_x.shape != (problem.d,):
        _warn_corrupt(
            path, f"x_star has shape {x_star.shape}, expected ({problem.d},)"
        )
        return None
    if not np.all(np.isfinite(x_star)):
        _warn_corrupt(path, "x_star contains non-finite values")
        return None
    try:
        metadata = json.loads(metadata_text)
        info = dict(metadata["info"])
        solver, status = metadata["solver"], metadata["solver_status"]
    except (ValueError, KeyError, TypeError) as exc:
        _warn_corrupt(path, f"metadata unreadable ({exc})")
        return None

    certificate = certify(problem, x_star)
    if not certificate.certified:
        _warn_corrupt(
            path,
            f"the {certificate.kind} at the cached x_star is {certificate.norm:.3e}, "
            f"above the certified bound for the floor {certificate.floor:.3e}",
        )
        return None
    f_i_star = problem.values(x_star)[0]
    x_star.setflags(write=False)
    f_i_star.setflags(write=False)
    info.update(certificate.to_info())
    info["cvxpy_x"] = cvxpy_x
    info["cache"] = str(path)
    logger.debug("loaded oracle cache entry %s", path)
    return Solution(
        x_star=x_star,
        f_star=float(f_i_star.mean()),
        f_i_star=f_i_star,
        grad_norm=certificate.norm,
        grad_norm_tol=certificate.floor,
        solver=solver,
        solver_status=status,
        polish_steps=int(metadata.get("polish_steps", 0)),
        solve_seconds=float(metadata.get("solve_seconds", 0.0)),
        info=info,
    )


def _checksum(x_star, cvxpy_x, metadata_text):
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x_star, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(cvxpy_x, dtype=np.float64).tobytes())
    digest.update(metadata_text.encode())
    return digest.hexdigest()


def _warn_corrupt(path, reason):
    logger.warning("ignoring corrupted oracle cache entry %s: %s; solving again", path, reason)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
