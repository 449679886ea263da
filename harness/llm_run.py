"""The LLM side of a run: what its LLMs spent, and a replay that checks the record it replays.

`run_usage`: the record's cost counts every LLM the run built (the run's ledger), or what a method
with its own client reports. `refuse_secret_overrides`: no key on the command line.

A replay (`llm=replay`) checks the record it replays instead of standing beside it.

A replayed run writes its record to its own Hydra run folder, never into `results/` (where
`skip_done` would skip it and the tables would count it twice), and compares itself with the
record of the same run in the results folder: `replay_check.json` in the run folder, and one log
line, say whether the metrics and the per-step scores are identical.

    python -m harness.optimize -m experiment=fig5b_traffic llm=replay
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHECK_FILE = "replay_check.json"


# Command-line keys that would carry a secret into .hydra/, the record, the log and W&B.
_SECRET_OVERRIDE = re.compile(r"^[+~]*(?:[\w.]*\.)?(api_key|apikey|openai_api_key|authorization|bearer)=",
                              re.IGNORECASE)


def refuse_secret_overrides(argv: list[str]) -> None:
    """Refuse `llm.api_key=...` and the like before anything is written: keys live in the environment."""
    from harness.api import ConfigError

    for argument in argv:
        match = _SECRET_OVERRIDE.match(argument)
        if match:
            name = argument.split("=", 1)[0].lstrip("+~")
            raise ConfigError(f"refusing {name}=...: a key on the command line ends up in .hydra/, logs and "
                              f"records; put it in an environment variable and name that variable: "
                              f"llm.api_key_env=<VAR>")


def run_usage(ledger: Any, optimizer: Any) -> Any:
    """What the run's LLMs spent: the ledger, or what a method using its own client reports."""
    total = ledger.total
    if total.calls or total.cache_hits:
        return total
    return getattr(optimizer, "llm_usage", None)


def is_replay(cfg: Any) -> bool:
    llm = cfg.get("llm") if hasattr(cfg, "get") else None
    return bool(llm) and hasattr(llm, "get") and llm.get("cache_mode") == "replay"


def replay_info(cfg: Any, info: Any) -> tuple[Any, Path | None]:
    """(where this run records, the record it replays or None): a replay records in its run folder."""
    if not is_replay(cfg):
        return info, None
    return dataclasses.replace(info, record_dir=info.output_dir), info.record_path


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# Metrics that count what reached the network (a task's own client totals): a replay, served
# from the cache, changes them by design. Per-role requests and tokens (`llm/<role>/*`) do not.
NETWORK_METRICS = re.compile(r"(^|/)student_(calls|cache_hits|prompt_tokens)$")


def differences(replayed: Any, original: Any) -> dict[str, Any]:
    """What differs between two records: metric values (not network counts), and the per-step
    scores and parameters."""
    found: dict[str, Any] = {}
    for key in sorted(set(replayed.metrics) | set(original.metrics)):
        if NETWORK_METRICS.search(key):
            continue
        new, old = replayed.metrics.get(key), original.metrics.get(key)
        if not _same(new, old):
            found[f"metrics/{key}"] = {"original": old, "replay": new}
    steps = lambda record: [(p.get("score"), p.get("params")) for p in record.curve]  # noqa: E731
    if steps(replayed) != steps(original):
        found["curve"] = {"original_steps": len(original.curve), "replay_steps": len(replayed.curve)}
    return found


def check_replay(record: Any, original_path: Path | None, output_dir: Path) -> dict[str, Any] | None:
    """Compare a replayed record with the one it replays; write and log the verdict."""
    if original_path is None:
        return None
    from harness.records import read_record

    if not original_path.exists():
        verdict: dict[str, Any] = {"original": str(original_path), "identical": None,
                                   "note": "no original record to compare with"}
        log.warning("replay: no original record at %s to compare with", original_path)
    else:
        found = differences(record, read_record(original_path))
        verdict = {"original": str(original_path), "identical": not found, "differences": found}
        if found:
            log.warning("replay DIFFERS from %s: %s", original_path, ", ".join(found))
        else:
            log.info("replay identical to %s (metrics and every step)", original_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / CHECK_FILE).write_text(json.dumps(verdict, indent=1, default=str))
    return verdict


class RoleSpending:
    """Requests and tokens per role (trace_core.llm.Metered meters the task and the method hold):
    per evaluation for the curve, and in total for the record's metrics."""

    def __init__(self, *owners: Any) -> None:
        self.meters = [m for owner in owners for m in getattr(owner, "meters", [])]
        self._before = self._now()

    def _now(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for meter in self.meters:  # two meters of one role (e.g. two students) add up
            for key, value in meter.as_metrics().items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def step(self) -> dict[str, int]:
        """What each role spent since the last call (this evaluation, with its ask and tell)."""
        now = self._now()
        spent = {key: value - self._before.get(key, 0) for key, value in now.items()}
        self._before = now
        return spent

    def totals(self) -> dict[str, int]:
        return self._now()
