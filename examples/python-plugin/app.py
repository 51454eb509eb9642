"""A durable backend for vsamrd written in Python, built into a WebAssembly
component by componentize-py from the same WIT contract as every plugin
(plugin-sdk/wit/backend.wit, world backend-core).

Each dataset is a log file in the directory vsamrd grants the backend
(/data), one line per write: "I <key> <record>" stores a record, "D <key>"
erases it, both in hexadecimal. The log is read into a dict and a sorted
key list when the dataset is first used. It keeps the rules of the contract
the way the Rust log example does:

- a write goes to the file at an explicit offset (os.pwrite): a full disk
  answers no-space, and the part that reached the file is cut off again;
- sync() fsyncs every log written since the last sync, and a failure is
  returned to vsamrd instead of an acknowledgement;
- a last line without its newline (a crash in the middle of a write) was
  never acknowledged: reading skips it, the next write cuts it off.
"""

import bisect
import errno
import os

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types

DATA = "/data"


def failure(path, action, error):
    message = f"{action} {path}: {error.strerror or error}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Err(types.StoreError_NoSpace(message))
    return Err(types.StoreError_Io(message))


def replay(path, text):
    records = {}
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        fields = line.split(" ")
        try:
            if fields[0] == "I" and len(fields) == 3:
                records[bytes.fromhex(fields[1])] = bytes.fromhex(fields[2])
                continue
            if fields[0] == "D" and len(fields) == 2:
                records.pop(bytes.fromhex(fields[1]), None)
                continue
        except ValueError:
            pass
        raise Err(types.StoreError_Io(f"{path} line {number} is not a record: the log was changed outside vsamrd"))
    return records


class Log:
    """One dataset: its open log file and its records."""

    def __init__(self, path):
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR)
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            raise Err(types.StoreError_NoSuchDataset())
        except OSError as error:
            raise failure(path, "opening", error)
        whole = data[: data.rfind(b"\n") + 1]
        self.length = len(whole)
        self.torn = len(whole) < len(data)
        self.records = replay(path, whole.decode("ascii"))
        self.keys = sorted(self.records)

    def write(self, line):
        try:
            if self.torn:
                os.ftruncate(self.fd, self.length)
                self.torn = False
            data = line.encode("ascii")
            done = 0
            while done < len(data):
                done += os.pwrite(self.fd, data[done:], self.length + done)
        except OSError as error:
            try:
                os.ftruncate(self.fd, self.length)
            except OSError:
                self.torn = True
            raise failure(self.path, "appending to", error)
        self.length += len(data)

    def put(self, key, value):
        self.write(f"I {key.hex()} {value.hex()}\n")
        if key not in self.records:
            bisect.insort(self.keys, key)
        self.records[key] = value

    def erase(self, key):
        self.write(f"D {key.hex()}\n")
        del self.records[key]
        self.keys.pop(bisect.bisect_left(self.keys, key))

    def sync(self):
        try:
            os.fsync(self.fd)
        except OSError as error:
            raise failure(self.path, "syncing", error)

    def close(self):
        os.close(self.fd)


# The instance's state. componentize-py does not serve every call with one
# `Store` object (measured: `get` and `replace` reached two different
# objects), so what must last from call to call lives in the module, which
# lives as long as the WebAssembly instance.
LOGS = {}
UNSYNCED = set()


class Store(exports.Store):
    """The store vsamrd calls: one instance at a time, one call at a time."""

    logs = LOGS
    unsynced = UNSYNCED

    def path(self, ds):
        # The dataset name itself: distinct names never share a file.
        return f"{DATA}/{ds.name}.log"

    def log(self, ds):
        found = self.logs.get(ds.name)
        if found is None:
            found = self.logs[ds.name] = Log(self.path(ds))
        return found

    def written(self, ds):
        self.unsynced.add(ds.name)

    def init(self, params):
        LOGS.clear()
        UNSYNCED.clear()
        log.write(log.Level.DEBUG, "python log store ready")

    def create(self, ds, layout):
        path = self.path(ds)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.fsync(fd)
            os.close(fd)
        except FileExistsError:
            raise Err(types.StoreError_AlreadyExists())
        except OSError as error:
            raise failure(path, "creating", error)

    def destroy(self, ds):
        found = self.logs.pop(ds.name, None)
        if found is not None:
            found.close()
        self.unsynced.discard(ds.name)
        try:
            os.remove(self.path(ds))
        except FileNotFoundError:
            raise Err(types.StoreError_NoSuchDataset())
        except OSError as error:
            raise failure(self.path(ds), "removing", error)

    def get(self, ds, key):
        return self.log(ds).records.get(key)

    def scan(self, ds, origin, dir, limit):
        found = self.log(ds)
        keys = found.keys
        forward = dir == types.Direction.FORWARD
        if isinstance(origin, types.Start_Edge):
            start = 0 if forward else len(keys) - 1
        elif isinstance(origin, types.Start_Inclusive):
            start = bisect.bisect_left(keys, origin.value) if forward else bisect.bisect_right(keys, origin.value) - 1
        else:
            start = bisect.bisect_right(keys, origin.value) if forward else bisect.bisect_left(keys, origin.value) - 1
        if forward:
            chosen = keys[start : start + limit]
        else:
            chosen = keys[max(start - limit + 1, 0) : start + 1][::-1] if start >= 0 else []
        return [types.Entry(key=key, value=found.records[key]) for key in chosen]

    def insert(self, ds, key, value):
        found = self.log(ds)
        if key in found.records:
            raise Err(types.StoreError_DuplicateKey())
        found.put(key, value)
        self.written(ds)

    def replace(self, ds, key, value):
        found = self.log(ds)
        if key not in found.records:
            raise Err(types.StoreError_NotFound())
        found.put(key, value)
        self.written(ds)

    def delete(self, ds, key):
        found = self.log(ds)
        if key not in found.records:
            raise Err(types.StoreError_NotFound())
        found.erase(key)
        self.written(ds)

    def append(self, ds, value):
        found = self.log(ds)
        if found.keys:
            last = found.keys[-1]
            rba = int.from_bytes(last, "big") + len(found.records[last])
        else:
            rba = 0
        key = rba.to_bytes(8, "big")
        found.put(key, value)
        self.written(ds)
        return key

    def flush(self, ds):
        pass

    def sync(self):
        names = list(UNSYNCED)
        UNSYNCED.clear()
        for name in names:
            found = self.logs.get(name)
            if found is not None:
                found.sync()
