"""Per-example test outputs beside the record, like lm-evaluation-harness's `--log_samples`.

A task's `test()` may leave `task.test_samples`: a list of JSON-able dicts, one per test example
(or per example and mode), e.g. each response with its verdict. The runner writes them to
`<record name>.samples.jsonl.gz` next to the record, so a result can be inspected and rescored
without sampling again. Tasks that leave nothing get no file.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

SUFFIX = ".samples.jsonl.gz"


def samples_path(record_path: Path) -> Path:
    return record_path.with_name(record_path.stem + SUFFIX)


def write_samples(rows: Iterable[dict[str, Any]], record_path: Path) -> Path:
    """Write atomically (temp file, then rename), like the record itself."""
    from harness.records import jsonable

    path = samples_path(record_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with gzip.open(tmp, "wt") as handle:
        for row in rows:
            handle.write(json.dumps(jsonable(row)) + "\n")
    os.replace(tmp, path)
    return path


def read_samples(record_path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(samples_path(record_path), "rt") as handle:
        for line in handle:
            yield json.loads(line)
