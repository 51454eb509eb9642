#!/usr/bin/env python3
"""What a change-outbox row costs an SQLite commit, by the table's layout.

vsamrd writes one outbox row inside every group's transaction on an SQL
backend (host/src/runtime/sql/outbox.rs); on SQLite, over a slot of a ring. This measures, on SQLite alone
(WAL, synchronous=FULL, as vsamrd opens it), small write groups like those
of eight connections of mixed writes: four changes of 100-byte records per
commit, without a row, and with a row in each layout. Rounds run in turn
and the medians are compared, since the disk's speed drifts.

    python3 bench/outbox_layout.py [DIR]    # DIR: where the database goes (default: .)
"""

import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

GROUPS = 3000
ROUNDS = 8
RECORDS = 20000

LAYOUTS = {
    "no outbox row": None,
    "key (log, backend, group)": "CREATE TABLE o (log_id TEXT, backend TEXT, grp BIGINT, changes BLOB, "
    "PRIMARY KEY (log_id, backend, grp))",
    "key (log, backend, group), without rowid": "CREATE TABLE o (log_id TEXT, backend TEXT, grp BIGINT, "
    "changes BLOB, PRIMARY KEY (log_id, backend, grp)) WITHOUT ROWID",
    "integer key, appended": "CREATE TABLE o (id INTEGER PRIMARY KEY, log_id TEXT, backend TEXT, grp BIGINT, "
    "changes BLOB)",
    "integer key, appended and emptied": "CREATE TABLE o (id INTEGER PRIMARY KEY, log_id TEXT, backend TEXT, "
    "grp BIGINT, changes BLOB)",
    "ring of slots (vsamrd)": "CREATE TABLE o (slot INTEGER PRIMARY KEY, grp BIGINT, changes BLOB)",
}
RING_SLOTS = 4096


def commits_per_second(directory, name, layout):
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        db = sqlite3.connect(os.path.join(scratch, "store.db"), isolation_level=None)
        db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;")
        db.execute("CREATE TABLE d (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        if layout:
            db.execute(layout)
        db.execute("BEGIN")
        for key in range(RECORDS):
            db.execute("INSERT INTO d VALUES (?, ?)", ("%010d" % key, os.urandom(100)))
        db.execute("COMMIT")
        ring = name.startswith("ring")
        if ring:
            db.execute("BEGIN")
            for slot in range(RING_SLOTS):
                db.execute("INSERT INTO o VALUES (?, ?, ?)", (slot, -1, os.urandom(600)))
            db.execute("COMMIT")
        rng = random.Random(1)
        next_key = [1_000_000_000 + writer * 10_000_000 for writer in range(8)]
        started = time.perf_counter()
        for group in range(GROUPS):
            db.execute("BEGIN")
            for _ in range(4):
                if rng.random() < 0.5:
                    writer = rng.randrange(8)
                    db.execute("INSERT INTO d VALUES (?, ?)", ("%010d" % next_key[writer], os.urandom(100)))
                    next_key[writer] += 1
                else:
                    key = "%010d" % rng.randrange(RECORDS)
                    db.execute("UPDATE d SET v = ? WHERE k = ?", (os.urandom(100), key))
            if ring:
                db.execute(
                    "INSERT INTO o VALUES (?, ?, ?) ON CONFLICT (slot) DO UPDATE SET grp = excluded.grp, "
                    "changes = excluded.changes",
                    (group % RING_SLOTS, group, os.urandom(600)),
                )
            elif layout:
                db.execute(
                    "INSERT INTO o (log_id, backend, grp, changes) VALUES (?, ?, ?, ?)",
                    ("0123456789abcdef0123456789abcdef", "b", group, os.urandom(600)),
                )
            db.execute("COMMIT")
            if name.endswith("emptied") and group % 200 == 199:
                # What the log holds durably, emptied as vsamrd did before the ring.
                db.execute("DELETE FROM o WHERE grp <= ?", (group - 100,))
        rate = GROUPS / (time.perf_counter() - started)
        db.close()
        return rate


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    rates = {name: [] for name in LAYOUTS}
    for _ in range(ROUNDS):
        for name, layout in LAYOUTS.items():
            rates[name].append(commits_per_second(directory, name, layout))
    base = statistics.median(rates["no outbox row"])
    print(f"SQLite commits of 4 changes each, {ROUNDS} rounds in turn, medians:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<42} {rate:7.0f} commits/s   ratio {rate / base:.2f}")


if __name__ == "__main__":
    main()
