"""Results store of a sweep: one SQLite row per finished run, keyed by a content hash.

Why SQLite (the ``sqlite3`` module of the standard library):

- It needs no server and no extra package, and the store is a single file that can be
  copied, inspected with the ``sqlite3`` shell, or shared by several sweeps.
- Every run is written in its own transaction, so a sweep killed at any point leaves
  each run either stored completely or not at all. A restarted sweep skips the stored
  runs and computes the rest.
- In WAL (write-ahead log) mode readers and the writer do not block each other, and a
  reader sees only committed runs, so another process can read the store while a sweep
  writes to it. A second writer waits up to ``BUSY_TIMEOUT_SECONDS`` for the write
  lock.

The key of a run is the sha256 of everything that determines its ``Trace``. That is
the problem data (A, b, reg, x0, loss and loss_param), the oracle's x_star and
f_i(x_star) that the Polyak step uses, and ``Method.describe()``. It is also the
seed, the batch size, the step count, the sampling scheme, the checkpoint grid and
the code version (``code_version``). Two sweeps that share a run therefore share its
row, and a change to the code that computes traces gives new keys instead of reusing
stale traces.
"""

import dataclasses
import hashlib
import io
import json
import logging
import sqlite3
from pathlib import Path

import numpy as np

import polyakcheck
from polyakcheck.trace import Trace

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 60.0
# SQLite limits the number of bound parameters of one statement
# (SQLITE_MAX_VARIABLE_NUMBER: 999 by default before SQLite 3.32.0, 32766 since), so
# key look-ups are split into chunks of this size.
QUERY_CHUNK = 500

PACKAGE_DIR = Path(polyakcheck.__file__).resolve().parent
# Sources whose code determines a trace: the method loop and its rounding slacks, the
# loss families and kernels, and run.py and trace.py, which turn the loop's output
# into a Trace.
CODE_SOURCES = ("methods/*.py", "problems/*.py", "run.py", "trace.py")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    problem TEXT NOT NULL,
    method TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    code_version TEXT NOT NULL,
    meta TEXT NOT NULL,
    arrays BLOB NOT NULL,
    seconds REAL NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def code_version():
    """Return the code version that run keys include.

    Returns
    -------
    str
        ``"<__version__>+<sha256 prefix>"``, where the hash covers the bytes of every
        file matched by ``CODE_SOURCES`` together with its path, so editing, adding or
        renaming one of these files changes the version.
    """
    digest = hashlib.sha256()
    for pattern in CODE_SOURCES:
        for path in sorted(PACKAGE_DIR.glob(pattern)):
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return f"{polyakcheck.__version__}+{digest.hexdigest()[:16]}"


def _array_bytes(array, dtype="<f8"):
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def _matrix_bytes(problem):
    # A sparse A is hashed by its canonical CSR arrays (Problem sorts the indices and
    # sums duplicates), so equal matrices give equal bytes.
    if problem.sparse:
        A = problem.A
        return [_array_bytes(A.data), _array_bytes(A.indices, "<i8"),
                _array_bytes(A.indptr, "<i8")]
    return [_array_bytes(problem.A)]


def run_key(problem, solution, method, seed, batch_size, steps, checkpoints,
            version=None, sampling="uniform"):
    """Return the sha256 hex digest that identifies one run.

    Parameters
    ----------
    problem : Problem
        Dense or sparse (CSR) data.
    solution : Solution
        The oracle output that the run uses.
    method : Method
    seed, batch_size, steps : int
    checkpoints : ndarray of int
        Checkpoint grid of the run.
    version : str, optional
        Code version; defaults to ``code_version()``. Pass it when hashing many runs,
        because computing it reads the source files.
    sampling : str
        Sampling scheme of the run, as for ``polyakcheck.run``.

    Returns
    -------
    str
        64 hex digits.
    """
    header = {
        "schema": SCHEMA_VERSION,
        "code_version": code_version() if version is None else version,
        "loss": problem.loss,
        "loss_param": float(problem.loss_param).hex(),
        "shape": list(problem.A.shape),
        "sparse": bool(problem.sparse),
        "nnz": int(problem.A.nnz) if problem.sparse else None,
        "reg": float(problem.reg).hex(),
        "method": method.describe(),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "steps": int(steps),
        "sampling": sampling,
        "checkpoints": [int(t) for t in checkpoints],
    }
    digest = hashlib.sha256()
    digest.update(json.dumps(header, sort_keys=True).encode())
    # The header fixes every array's length, so the concatenation is unambiguous.
    for data in _matrix_bytes(problem):
        digest.update(data)
    for array in (problem.b, problem.x0, solution.x_star, solution.f_i_star):
        digest.update(_array_bytes(array))
    return digest.hexdigest()


def serialize_trace(trace):
    """Serialize a ``Trace`` into JSON text and npz bytes.

    Returns
    -------
    meta : str
        JSON of the fields that are not arrays. Non-finite floats are written as the
        JSON extensions ``Infinity`` and ``NaN``, which ``json.loads`` reads back.
    arrays : bytes
        ``numpy.savez`` archive of the ndarray fields, read back bit for bit.
    """
    meta = {}
    arrays = {}
    for spec in dataclasses.fields(Trace):
        value = getattr(trace, spec.name)
        if isinstance(value, np.ndarray):
            arrays[spec.name] = value
        else:
            meta[spec.name] = _plain(value)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return json.dumps(meta, sort_keys=True), buffer.getvalue()


def _plain(value):
    # Numpy scalars inside the dict fields become Python numbers; JSON turns tuples
    # into lists, which deserialize_trace turns back for the tuple fields.
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def deserialize_trace(meta, arrays):
    """Rebuild the ``Trace`` that ``serialize_trace`` wrote."""
    values = json.loads(meta)
    with np.load(io.BytesIO(arrays), allow_pickle=False) as archive:
        for name in archive.files:
            values[name] = archive[name]
    for spec in dataclasses.fields(Trace):
        if spec.type in (tuple, "tuple") and isinstance(values.get(spec.name), list):
            values[spec.name] = tuple(values[spec.name])
    return Trace(**values)


class RunStore:
    """SQLite store of finished runs, one row per run key.

    Parameters
    ----------
    path : str or os.PathLike
        Database file; it and its parent directories are created when missing.

    Notes
    -----
    Each ``RunStore`` opens one connection, for use by one thread. Use it as a
    context manager or call ``close``.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._conn:
            self._conn.executescript(_SCHEMA)
        self._check_schema()

    def _check_schema(self):
        row = self._conn.execute(
            "SELECT value FROM info WHERE name = 'schema_version'"
        ).fetchone()
        if row is None:
            with self._conn:
                self._conn.execute(
                    "INSERT OR IGNORE INTO info VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        elif int(row[0]) != SCHEMA_VERSION:
            raise ValueError(
                f"store {self.path} has schema version {row[0]}, this code reads "
                f"version {SCHEMA_VERSION}; pass a new store path"
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close the connection."""
        self._conn.close()

    def __len__(self):
        return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def stored_keys(self, keys):
        """Return the subset of ``keys`` that the store contains, as a set."""
        keys = list(keys)
        found = set()
        for start in range(0, len(keys), QUERY_CHUNK):
            chunk = keys[start:start + QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key FROM runs WHERE key IN ({marks})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def put(self, key, problem_name, trace, version):
        """Store one finished run in its own transaction.

        Parameters
        ----------
        key : str
            ``run_key`` of the run.
        problem_name : str
        trace : Trace
        version : str
            ``code_version()`` that the key includes, kept for inspection.

        Returns
        -------
        bool
            True when the row was inserted, False when the key was already stored
            (for example by another sweep that shares this store).
        """
        meta, arrays = serialize_trace(trace)
        with self._conn:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO runs (key, problem, method, batch_size, steps, "
                "seed, code_version, meta, arrays, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, problem_name, trace.label, int(trace.batch_size),
                 int(trace.steps), int(trace.seed), version, meta, arrays,
                 float(trace.seconds)),
            )
        return cursor.rowcount == 1

    def get_many(self, keys):
        """Load the traces of ``keys``.

        Returns
        -------
        dict
            key -> ``Trace`` for every key of ``keys`` that the store contains.
        """
        keys = list(keys)
        traces = {}
        for start in range(0, len(keys), QUERY_CHUNK):
            chunk = keys[start:start + QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, meta, arrays FROM runs WHERE key IN ({marks})", chunk
            )
            for key, meta, arrays in rows:
                traces[key] = deserialize_trace(meta, arrays)
        return traces

    def get(self, key):
        """Load the trace of ``key``.

        Raises
        ------
        KeyError
            If the store does not contain ``key``.
        """
        traces = self.get_many([key])
        if key not in traces:
            raise KeyError(f"run {key} is not in the store {self.path}")
        return traces[key]
