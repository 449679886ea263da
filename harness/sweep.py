"""A multirun survives its failed jobs: each writes a failure record, the sweep goes on, and the
process ends non-zero with a one-line summary.

    with failures_recorded(cfg, "optimizer") as outcome:   # inside the @hydra.main function
        outcome.record = run(cfg)
    with sweep_summary():                                   # around the whole Hydra call
        hydra_main()

Jobs may run in other processes (joblib launcher), so each appends one JSON line to a file the
parent names in HARNESS_SWEEP_LOG; the parent reads it when Hydra returns.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from hydra.experimental.callback import Callback

from harness.records import FAILURE_SUFFIX, RunRecord, git_sha, jsonable, write_atomic

log = logging.getLogger(__name__)
SWEEP_LOG = "HARNESS_SWEEP_LOG"


@dataclass
class Outcome:
    record: RunRecord | None = None  # None when the job failed


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def failures_recorded(cfg: Any, method_group: str) -> Iterator[Outcome]:
    """In a multirun, turn this job's exception into a failure record; a single run still raises."""
    outcome = Outcome()
    if not in_multirun():
        yield outcome
        return
    begun = datetime.now(timezone.utc).replace(microsecond=0)  # records carry whole seconds
    try:
        yield outcome
    except Exception as exc:  # noqa: BLE001 (any failure of one job; Ctrl-C still ends the sweep)
        path, name, reason = write_failure(cfg, method_group, exc)
        log.error("job %s failed: %s (failure record %s)", name, reason, path)
        _note({"status": "failed", "name": name, "reason": reason, "path": str(path)})
    else:  # a record made before the job began is one skip_done returned: the job did not run
        record = outcome.record
        skipped = record is not None and datetime.fromisoformat(record.created) < begun
        _note({"status": "skipped" if skipped else "ok"})


def write_failure(cfg: Any, method_group: str, exc: BaseException) -> tuple[Path, str, str]:
    """Write `<record name>.failed.json` (reason, step reached, config) where the record would go."""
    from harness.runs import RunInfo, user_error_message

    reason = user_error_message(exc) or f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        info = RunInfo.from_config(cfg, method_group)
        directory, name, config = info.record_dir, info.name, info.config
        journal = info.output_dir / "progress.jsonl"
        steps = journal.read_text().count("\n") if journal.exists() else 0
    except Exception:  # noqa: BLE001 (the config itself is what failed: keep what can be said)
        from hydra.core.hydra_config import HydraConfig

        directory = Path(HydraConfig.get().runtime.output_dir)
        name, config, steps = f"job{HydraConfig.get().job.num}", None, 0
    failure = {"status": "failed", "reason": reason, "step": steps, "name": name,
               "config": config, "git_sha": git_sha(),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "traceback": "".join(traceback.format_exception(exc))}
    path = write_atomic(Path(directory) / f"{name}{FAILURE_SUFFIX}",
                        json.dumps(jsonable(failure), indent=1, default=repr))
    return path, name, reason


def _note(entry: dict[str, Any]) -> None:
    target = os.environ.get(SWEEP_LOG)
    if target:
        with open(target, "a") as handle:  # one short line per job: appends do not interleave
            handle.write(json.dumps(entry) + "\n")
        if entry["status"] != "start":
            log.info(progress_line([json.loads(line) for line in Path(target).read_text().splitlines() if line]))


def progress_line(entries: list[dict[str, Any]]) -> str:
    """`sweep: 3/20 jobs done (1 failed), 2m10s elapsed, about 12m30s left` from the sweep log;
    jobs skipped for an existing record are said and left out of the rate."""
    start = next((e for e in entries if e["status"] == "start"), None)
    done = [e for e in entries if e["status"] != "start"]
    failed = sum(e["status"] == "failed" for e in done)
    skipped = sum(e["status"] == "skipped" for e in done)
    line = f"sweep: {len(done)}/{start['total'] if start else '?'} jobs done"
    notes = [f"{failed} failed"] * bool(failed) + [f"{skipped} skipped: records exist"] * bool(skipped)
    line += f" ({', '.join(notes)})" if notes else ""
    if start:
        elapsed = time.time() - start["time"]
        line += f", {clock(elapsed)} elapsed"
        left, ran = start["total"] - len(done), len(done) - skipped
        if ran and left > 0:  # jobs run in parallel under joblib: the rate says it all
            line += f", about {clock(elapsed / ran * left)} left"  # a skip takes a second, a run an hour
    return line


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def count_jobs(config: Any) -> int:
    """How many jobs Hydra's basic sweeper makes of this multirun (the experiment's grid and the
    command line's lists, the command line winning for a key both give)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    overrides = [*(f"{k}={v}" for k, v in params.items()), *config.hydra.overrides.task]
    parsed = OverridesParser.create().parse_overrides(overrides)
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


class SweepProgress(Callback):
    """A Hydra callback (configs' hydra.callbacks): the sweep's size and start, for `progress_line`."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        try:
            total = count_jobs(config)
        except Exception:  # noqa: BLE001 (another sweeper's syntax: no total, the counts still show)
            return
        _note({"status": "start", "total": total, "time": time.time()})


@contextmanager
def sweep_summary() -> Iterator[None]:
    """Around Hydra: after a multirun with failed jobs, print one summary line and exit 1."""
    if os.environ.get(SWEEP_LOG):  # a nested call (a test, a job) reports to the outer one
        yield
        return
    fd, target = tempfile.mkstemp(prefix="harness-sweep-", suffix=".jsonl")
    os.close(fd)
    os.environ[SWEEP_LOG] = target
    try:
        yield
        entries = [json.loads(line) for line in Path(target).read_text().splitlines() if line]
        entries = [e for e in entries if e["status"] != "start"]  # SweepProgress's note of the sweep's size
    finally:
        os.environ.pop(SWEEP_LOG, None)
        Path(target).unlink(missing_ok=True)
    failed = [e for e in entries if e["status"] == "failed"]
    if failed:
        first = failed[0]
        print(f"error: {len(failed)} of {len(entries)} jobs failed (first: {first['name']}: {first['reason']}); "
              f"failure records: {', '.join(e['path'] for e in failed[:3])}"
              f"{' ...' if len(failed) > 3 else ''}", file=sys.stderr)
        raise SystemExit(1)
