"""Loading MATH problems: a local JSONL / JSON file, a folder (ours or the original MATH tree),
or a hub id through `datasets` (offline-aware). Used by tasks.dualformer_paper.math.

    from tasks.dualformer_paper.math_data import DataSpec, load_problems
    problems = load_problems(DataSpec(source="../shared/data/math", split="train"))
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import ConfigError
from tasks.dualformer_paper.math_answers import last_boxed

REPO = Path(__file__).resolve().parents[2]  # tasks/<paper>_paper/<module>.py


@dataclass(frozen=True)
class MathProblem:
    id: str
    problem: str
    solution: str
    answer: str
    subject: str = ""
    level: int = 0  # 1..5; 0 when unknown ("Level ?")


@dataclass(frozen=True)
class DataSpec:
    """Where one split comes from: a local file or folder, or a hub dataset id.

    source: `*.jsonl` / `*.json` file; a folder with `<split>.jsonl`; a folder in the original
      MATH layout (`<split>/<subject>/<n>.json`); or a hub id read with `datasets` (offline when
      HF_DATASETS_OFFLINE=1: only what is already cached). A relative path that is not found
      from the working directory is read from the repository root.
    configs: hub configurations to concatenate (EleutherAI/hendrycks_math has one per subject).
    """

    source: str
    split: str = "train"
    configs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "configs", tuple(str(c) for c in self.configs or ()))


def load_problems(spec: DataSpec) -> list[MathProblem]:
    """Every problem of `spec`, in the source's order."""
    path = Path(spec.source).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO / path).exists():
        path = REPO / path  # a repository path (the smoke fixtures) from any working directory
    if path.is_file():
        rows = _read_file(path)
    elif path.is_dir():
        rows = _read_folder(path, spec.split)
    elif spec.source.startswith((".", "/", "~")) or spec.source.endswith((".json", ".jsonl")):
        raise ConfigError(f"task data: no such file or folder: {spec.source}")
    else:
        rows = _read_hub(spec)
    return [_problem(row, i) for i, row in enumerate(rows)]


def _read_file(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else data.get("data", [data])


def _read_folder(path: Path, split: str) -> list[dict[str, Any]]:
    for name in (f"{split}.jsonl", f"{split}.json"):
        if (path / name).is_file():
            return _read_file(path / name)
    by_number = lambda p: (p.parent.name, int(p.stem) if p.stem.isdigit() else math.inf, p.stem)  # noqa: E731
    files = sorted((path / split).glob("*/*.json"), key=by_number)
    if not files:
        raise ConfigError(f"task data: {path} has no {split}.jsonl and no {split}/<subject>/*.json")
    return [{**json.loads(p.read_text(encoding="utf-8")), "unique_id": str(p.relative_to(path))}
            for p in files]


def _read_hub(spec: DataSpec) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"task data {spec.source!r} is neither a local path nor loadable: "
                          f"install `datasets` for hub ids, or point the source at a JSONL file") from None
    rows: list[dict[str, Any]] = []
    for config in spec.configs or (None,):
        try:
            part = datasets.load_dataset(spec.source, name=config, split=spec.split)
        except Exception as exc:  # offline without a cache, unknown id, ...: one line for the user
            offline = os.environ.get("HF_DATASETS_OFFLINE") or os.environ.get("HF_HUB_OFFLINE")
            hint = " (HF_DATASETS_OFFLINE is set: only cached datasets load)" if offline else ""
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            name = f"{spec.source}[{config}]" if config else spec.source
            raise ConfigError(f"task data: cannot load {name} split {spec.split}: "
                              f"{type(exc).__name__}: {first_line}{hint}") from None
        rows.extend(dict(row, unique_id=row.get("unique_id") or f"{config or spec.source}/{spec.split}/{i}")
                    for i, row in enumerate(part))
    return rows


def _problem(row: dict[str, Any], index: int) -> MathProblem:
    solution = row.get("solution", "")
    answer = row.get("answer") or last_boxed(solution) or ""
    level = re.search(r"\d", str(row.get("level", "")))
    subject = row.get("type") or row.get("subject", "")  # MATH says type, MATH-500 subject
    return MathProblem(id=str(row.get("unique_id") or row.get("id") or index), problem=row["problem"],
                       solution=solution, answer=str(answer), subject=subject,
                       level=int(level.group()) if level else 0)
