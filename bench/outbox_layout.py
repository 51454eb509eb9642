#!/usr/bin/env python3
"""What a change-outbox row costs an SQLite commit, by the table's layout.

vsamrd writes one outbox row inside every group's transaction on an SQL
backend (host/src/runtime/sql/outbox/); on SQLite, over a slot of a ring.
This measures, on SQLite alone (WAL, synchronous=FULL, as vsamrd opens
it), write groups like those of eight connections of mixed writes: four
changes of 100-byte records per commit, whose outbox rows hold from one
to eight changes (groups differ in size), without a row and with a row in
each layout. For each layout it prints the commits a second (rounds run
in turn and the medians are compared, since the disk's speed drifts) and
the pages each commit writes to the WAL (counted in a pass of its own,
without checkpoints), which is what every commit's fsync waits for.

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
RING_SLOTS = 4096
# A slot's changes and padding together, padded to one size (a page's
# worth), so that no slot written over grows or shrinks: SQLite then never
# rebalances the ring's pages (an experiment; vsamrd's slots are their
# group's size).
SLOT_ROW_BYTES = 3996
PAGE = 4096
# What one change of a 100-byte record takes in an outbox row.
CHANGE_BYTES = 165

RING = "CREATE TABLE o (slot INTEGER PRIMARY KEY, grp BIGINT, changes BLOB, pad BLOB)"
LAYOUTS = {
    "no outbox row": None,
    "key (log, backend, group)": "CREATE TABLE o (log_id TEXT, backend TEXT, grp BIGINT, changes BLOB, "
    "PRIMARY KEY (log_id, backend, grp))",
    "integer key, appended": "CREATE TABLE o (id INTEGER PRIMARY KEY, log_id TEXT, backend TEXT, grp BIGINT, "
    "changes BLOB)",
    "integer key, appended and emptied": "CREATE TABLE o (id INTEGER PRIMARY KEY, log_id TEXT, backend TEXT, "
    "grp BIGINT, changes BLOB)",
    "ring, slots of their group's size (vsamrd)": RING,
    "ring, slots of one size": RING,
}


def changes(rng):
    """A group's outbox row: one to eight changes."""
    return os.urandom(40 + CHANGE_BYTES * rng.randint(1, 8))


def write_row(db, name, group, blob):
    if name.startswith("ring"):
        pad = max(0, SLOT_ROW_BYTES - len(blob)) if "one size" in name else 0
        db.execute(
            "INSERT INTO o VALUES (?, ?, ?, zeroblob(?)) ON CONFLICT (slot) DO UPDATE SET grp = excluded.grp, "
            "changes = excluded.changes, pad = excluded.pad",
            (group % RING_SLOTS, group, blob, pad),
        )
    else:
        db.execute(
            "INSERT INTO o (log_id, backend, grp, changes) VALUES (?, ?, ?, ?)",
            ("0123456789abcdef0123456789abcdef", "b", group, blob),
        )


def run(directory, name, layout, count_pages):
    """Commits a second, or (count_pages) WAL pages a commit."""
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        path = os.path.join(scratch, "store.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;")
        db.execute("CREATE TABLE d (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        if layout:
            db.execute(layout)
        rng = random.Random(1)
        db.execute("BEGIN")
        for key in range(RECORDS):
            db.execute("INSERT INTO d VALUES (?, ?)", ("%010d" % key, os.urandom(100)))
        if name.startswith("ring"):
            # A ring gone round once, as in a server that ran a while.
            for slot in range(RING_SLOTS):
                write_row(db, name, slot, changes(rng))
        db.execute("COMMIT")
        if count_pages:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA wal_autocheckpoint=0")
        next_key = [1_000_000_000 + writer * 10_000_000 for writer in range(8)]
        started = time.perf_counter()
        for group in range(RING_SLOTS, RING_SLOTS + GROUPS):
            db.execute("BEGIN")
            for _ in range(4):
                if rng.random() < 0.5:
                    writer = rng.randrange(8)
                    db.execute("INSERT INTO d VALUES (?, ?)", ("%010d" % next_key[writer], os.urandom(100)))
                    next_key[writer] += 1
                else:
                    key = "%010d" % rng.randrange(RECORDS)
                    db.execute("UPDATE d SET v = ? WHERE k = ?", (os.urandom(100), key))
            if layout:
                write_row(db, name, group, changes(rng))
            db.execute("COMMIT")
            if name.endswith("emptied") and group % 200 == 199:
                # What the log holds durably, emptied as vsamrd did before the ring.
                db.execute("DELETE FROM o WHERE grp <= ?", (group - 100,))
        elapsed = time.perf_counter() - started
        wal = os.path.getsize(path + "-wal")
        db.close()
        if count_pages:
            return (wal - 32) / (PAGE + 24) / GROUPS
        return GROUPS / elapsed


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    pages = {name: run(directory, name, layout, True) for name, layout in LAYOUTS.items()}
    rates = {name: [] for name in LAYOUTS}
    for _ in range(ROUNDS):
        for name, layout in LAYOUTS.items():
            rates[name].append(run(directory, name, layout, False))
    base = statistics.median(rates["no outbox row"])
    print(f"SQLite commits of 4 changes each, {ROUNDS} rounds in turn, medians:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(
            f"  {name:<44} {rate:7.0f} commits/s   ratio {rate / base:.2f}   "
            f"WAL pages per commit {pages[name]:.2f}"
        )


if __name__ == "__main__":
    main()
