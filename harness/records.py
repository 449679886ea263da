"""Self-describing run records: one JSON file per run, written atomically, read back as a table.

A record says what ran (experiment, task, method, seed, mode, resolved config), what came out
(metrics, per-step curve), what it cost (seconds; LLM calls and tokens), and how to rebuild it
(git sha, package versions, provenance). Its identity is the hash of its config (harness.identity),
which is also in its file name. `scripts/make_tables.py` reads `results/` only through `load_records`.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.api import ConfigError
from harness.identity import config_hash, run_stem
from harness.plainjson import jsonable, unjson_float  # noqa: F401 (jsonable: the runners import it from here)
from harness.provenance import git_sha

# 2: the file name and `config_hash` carry the run's identity; `provenance` says where it ran.
SCHEMA = 2

FAILURE_SUFFIX = ".failed.json"  # a failed job's record, beside the records (never a result)

# Distributions whose versions can change a number in a record.
TRACKED_PACKAGES = (
    "trace-dualformer-harness", "hydra-core", "omegaconf", "numpy", "scipy", "pandas",
    "scikit-learn", "scikit-optimize", "pyswarms", "uxsim", "wandb", "torch", "openai",
    "metaworld", "mujoco", "dspy", "litellm", "datasets", "transformers", "tokenizers",
    "huggingface-hub", "peft", "accelerate", "sympy", "vllm",
)


def record_filename(task: str, method: str, seed: int, digest: str) -> str:
    return run_stem(task, method, seed, digest) + ".json"


@dataclass
class Cost:
    seconds: float = 0.0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    llm_seconds: float = 0.0  # time spent waiting for the model (inside `seconds`)
    llm_models: str = ""  # what the endpoints said answered, "name xN, ..." (not what was asked for)


@dataclass
class RunRecord:
    experiment: str
    task: str
    method: str
    seed: int
    mode: str
    metrics: dict[str, float]
    curve: list[dict[str, Any]]
    cost: Cost
    config: dict[str, Any]
    git_sha: str = field(default_factory=lambda: git_sha())
    packages: dict[str, str] = field(default_factory=lambda: package_versions())
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA
    config_hash: str = ""   # harness.identity.config_hash(config); filled in when left empty
    # python, platform, torch/device, run folder, W&B run id (harness.provenance, harness.runs)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.config_hash:
            self.config_hash = config_hash(self.config)

    @property
    def filename(self) -> str:
        return record_filename(self.task, self.method, self.seed, self.config_hash)

    def to_json(self) -> str:
        return json.dumps(jsonable(asdict(self)), indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        data = dict(data)
        data["cost"] = Cost(**data["cost"])
        data["metrics"] = {k: unjson_float(v) for k, v in data["metrics"].items()}
        data["curve"] = [{k: unjson_float(v) for k, v in point.items()} for point in data["curve"]]
        return cls(**data)


def write_record(record: RunRecord, directory: str | Path) -> Path:
    """Write `record` into `directory` atomically: a reader sees the old file or the whole new one."""
    return write_atomic(Path(directory) / record.filename, record.to_json())


def write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temp file in the same directory so os.replace is a rename on one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide records that tables show
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class UnreadableRecord(ConfigError):
    """A record file cut short or damaged (a full disk, an interrupted copy, a hand edit)."""


def current_umask() -> int:
    """The process umask, read without setting it (os.umask would, for a moment, for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_record(path: str | Path) -> RunRecord:
    try:
        return RunRecord.from_dict(json.loads(Path(path).read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # bad JSON, or JSON of another shape
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
        raise UnreadableRecord(f"{path}: not a readable run record ({reason}); move it aside "
                               f"(mv {path} {path}.bad) and rerun to redo that run") from None


def is_record_path(path: Path) -> bool:
    """Whether a .json file under a results folder is a run record: not an interrupted write's
    temp file, a failed job's note (harness.sweep), or another file (e.g. results/budget/lengths.json)."""
    return not path.name.startswith(".") and not path.name.endswith(FAILURE_SUFFIX) and "__seed" in path.name


def load_records(root: str | Path, skipped: list[str] | None = None) -> "pandas.DataFrame":  # noqa: F821
    """All records under `root` (recursively) as one row each; metrics become columns.

    Columns: experiment, task, method, seed, mode, path, curve (list of dicts), llm (what answered
    its LLM calls), config_hash, config (the resolved config), cost/<field>, and one column per
    metric key (`train/best_score`, ...). Failure records (`*.failed.json`) are not runs: skipped.
    An unreadable record raises UnreadableRecord, or, when a `skipped` list is given, is left out
    and its path appended there (the tables are built from the rest and name it).
    """
    import pandas as pd

    rows = []
    for path in sorted(Path(root).rglob("*.json")):
        if not is_record_path(path):
            continue
        try:
            record = read_record(path)
        except UnreadableRecord:
            if skipped is None:
                raise
            skipped.append(str(path))
            continue
        row = {"experiment": record.experiment, "task": record.task, "method": record.method,
               "seed": record.seed, "mode": record.mode, "path": str(path), "curve": record.curve,
               "llm": llm_used(record.config, record.cost), "config_hash": record.config_hash, "config": record.config}
        row.update({f"cost/{k}": v for k, v in asdict(record.cost).items()})
        row.update(record.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def llm_used(config: dict[str, Any], cost: Cost | None = None) -> str:
    """What answered a run's LLM calls, in a few words: a table says which rows are real-LLM runs.
    A run that asked nothing names no model: "0 LLM calls"."""
    optimizer = config.get("optimizer") or {}
    # only methods that ask a model name one (a search wrapper: its inner method)
    llm = optimizer.get("llm") or (optimizer.get("inner") or {}).get("llm")
    if not llm:
        return "no LLM"
    if str(llm.get("_target_", "")).endswith("ScriptedLLM"):
        return "scripted test double"
    if cost is not None and not (cost.llm_calls or cost.cache_hits):
        return "0 LLM calls"
    model = llm.get("model", "?")
    return f"{model} (replayed from cache)" if llm.get("cache_mode") == "replay" else str(model)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
