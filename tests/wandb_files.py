"""Reading a W&B run's offline files back (for tests): the records of `run-<id>.wandb`.

The file is a LevelDB-style log (7-byte W&B header, then 32 KiB blocks of records, each record
with a 7-byte header: checksum, length, type FULL/FIRST/MIDDLE/LAST) of `wandb_internal_pb2.Record`
protobufs, which W&B's own `wandb sync` reads.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if length == 0 and kind == 0:
            pos += left
            continue
        payload, pos = data[pos + HEADER:pos + HEADER + length], pos + HEADER + length
        if kind == FULL:
            out.append(payload)
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            out.append(pending + payload)
    return out


@dataclass
class OfflineRun:
    config: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    job_type: str = ""
    group: str = ""
    run_id: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # metric name -> summary goal
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (type, name)
    console: list[str] = field(default_factory=list)


def read_offline_run(run_file: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    run = OfflineRun()
    for raw in raw_records(run_file):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.job_type, run.group, run.tags = r.run_id, r.job_type, r.run_group, list(r.tags)
            run.config.update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "config":
            run.config.update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            run.history.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run.summary.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json) for u in record.summary.update})
        elif kind == "metric":
            goal = "min" if record.metric.summary.min else "max" if record.metric.summary.max else ""
            run.metrics[record.metric.name] = goal
        elif kind == "artifact":
            run.artifacts.append((record.artifact.type, record.artifact.name))
        elif kind == "output_raw":
            run.console.append(record.output_raw.line)
    return run


def offline_runs(directory: Path) -> list[OfflineRun]:
    """The runs under `directory`. W&B's service writes run files asynchronously after finish():
    tearing it down first flushes them (the next wandb.init starts it again)."""
    import wandb

    wandb.teardown()
    return [read_offline_run(p) for p in sorted(Path(directory).glob("wandb/offline-run-*/run-*.wandb"))]
