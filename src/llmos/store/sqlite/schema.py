"""The SQLite schema and connection settings of the embedded store.

``objects`` holds each object's JSON exactly as the API returns it, so a list
is a string join, not a re-serialisation. ``events`` is the watch history
(the revisions after ``compacted_rv``). ``owner_refs`` indexes dependents for
cascading deletes. ``secrets`` keeps hashes beside objects, never inside them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    rv INTEGER NOT NULL,
    labels TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    labels TEXT NOT NULL,
    prev_labels TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (resource, rv);
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);
CREATE TABLE IF NOT EXISTS owner_refs (
    owner_uid TEXT NOT NULL,
    dependent_uid TEXT NOT NULL,
    PRIMARY KEY (owner_uid, dependent_uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS owner_refs_by_dependent ON owner_refs (dependent_uid);
CREATE TABLE IF NOT EXISTS secrets (uid TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('rv', 0), ('compacted_rv', 0), ('schema', 1);
"""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with WAL journaling.

    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction across
    a crash or kill -9 of the process; only an OS crash or power cut can lose
    the last few, and it can never corrupt the database.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -16000")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_DDL)
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if version != SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {version}, this LLMOS expects "
            f"{SCHEMA_VERSION}: upgrade LLMOS or restore a matching backup"
        )
