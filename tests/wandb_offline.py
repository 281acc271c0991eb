"""Read what an offline W&B run wrote (`<dir>/wandb/offline-run-*/run-*.wandb`), so tests check the real thing.

wandb 0.31 writes the run as a LevelDB-style log of protobuf `Record`s (wandb/proto/wandb_internal_pb2.py):
a 7-byte file header (":W&B", magic, version), then 32 KiB blocks of chunks, each a 7-byte header
(checksum, little-endian length, type: 1 full, 2 first, 3 middle, 4 last) and its bytes. The Python
reader that older wandb shipped is gone (the Go core writes these files), hence these few lines.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FILE_HEADER = b":W&B"


def offline_runs(folder: Path) -> list[Path]:
    """The offline run folders under folder (searched recursively), oldest first."""
    return sorted(Path(folder).rglob("offline-run-*"))


def read_records(run_folder: Path) -> list:
    """Every Record of the run's .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    (path,) = Path(run_folder).glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == FILE_HEADER, f"{path} is not a W&B run file"
    records, chunk, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        if kind == 0 and length == 0:  # zero padding up to the next block
            pos += (BLOCK - pos % BLOCK) % BLOCK
            continue
        chunk += data[pos:pos + length]
        pos += length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def finished_records(run_folder: Path, timeout: float = 60.0) -> list:
    """The records once the run's `exit` record is on disk: W&B's service process writes the file on its
    own time, after the process that logged the run may have ended."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_records(run_folder)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _items(updates) -> dict:
    out = {}
    for u in updates:
        key = u.key or "/".join(u.nested_key)
        out[key] = json.loads(u.value_json)
    return out


def run_info(records: list):
    """The `run` record: project, run_group, job_type, display_name, config."""
    return next(r.run for r in records if r.WhichOneof("record_type") == "run")


def summary(records: list) -> dict:
    """The run's summary as the last update of each key left it (nested keys joined with '/')."""
    out: dict = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            out |= _items(r.summary.update)
    return out


def history(records: list) -> list[dict]:
    """Each logged step's values (nested keys joined with '/')."""
    return [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]


def config(records: list) -> dict:
    return _items(run_info(records).config.update)
