"""A multirun survives its failed jobs: each writes a failure record, the sweep goes on, and the
process ends non-zero with a one-line summary.

    with failures_recorded(cfg, "optimizer") as outcome:   # inside the @hydra.main function
        outcome.record = run(cfg)
    with sweep_summary():                                   # around the whole Hydra call
        hydra_main()

Jobs may run in other processes (joblib launcher) or on other hosts (SLURM), so each writes its
note (ok, skipped, failed) as one small file in a folder of the sweep's own folder, which the
parent names in HARNESS_SWEEP_LOG and reads when Hydra returns. One file per job, replaced
atomically, is safe on a network filesystem (appends to one shared file are not), and a job that
is requeued and then finishes leaves only its last note.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
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
    if not in_multirun() or os.environ.get("RANK", "0") != "0":  # a DDP run's rank 0 speaks for it
        yield outcome
        return
    begun = datetime.now(timezone.utc).replace(microsecond=0)  # records carry whole seconds
    try:
        yield outcome
    except Exception as exc:  # noqa: BLE001 (any failure of one job; Ctrl-C still ends the sweep)
        path, name, reason = write_failure(cfg, method_group, exc)
        log.error("job %s failed: %s (failure record %s)", name, reason, path)
        _note({"status": "failed", "name": name, "reason": reason, "path": str(path)})
    except SystemExit as exc:  # a stop signal (scancel, requeue, pre-timeout): say so, then stop
        if not isinstance(exc.code, int) or exc.code < 128:
            raise
        reason = stop_reason(exc.code - 128)
        path, name, _ = write_failure(cfg, method_group, exc, reason)
        log.error("job %s stopped: %s (failure record %s)", name, reason, path)
        requeue = exc.code - 128 == signal.SIGUSR2  # the launcher requeues it: not done yet
        _note({"status": "requeued" if requeue else "failed", "name": name, "reason": reason, "path": str(path)})
        raise
    else:  # a record made before the job began is one skip_done returned: the job did not run
        record = outcome.record
        skipped = record is not None and datetime.fromisoformat(record.created) < begun
        _note({"status": "skipped" if skipped else "ok"})


def stop_reason(signum: int) -> str:
    name = signal.Signals(signum).name
    why = {"SIGTERM": "cancelled or pre-empted", "SIGUSR2": "pre-timeout signal: requeued",
           "SIGUSR1": "pre-timeout signal", "SIGINT": "interrupted"}.get(name, "signal")
    return f"stopped by {name} ({why}; a training run saved its checkpoint)"


def write_failure(cfg: Any, method_group: str, exc: BaseException,
                  reason: str | None = None) -> tuple[Path, str, str]:
    """Write `<record name>.failed.json` (reason, step reached, config) where the record would go."""
    from harness.runs import RunInfo, user_error_message

    reason = reason or user_error_message(exc) or f"{type(exc).__name__}: {exc}".splitlines()[0]
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


def _note(entry: dict[str, Any], key: str | None = None) -> None:
    """This job's note in the sweep's notes folder (the start note's key is `start`)."""
    target = os.environ.get(SWEEP_LOG)
    if not target:
        return
    if key is None:
        from hydra.core.hydra_config import HydraConfig

        key = f"job{HydraConfig.get().job.num}"
    write_atomic(Path(target) / f"{key}.json", json.dumps(entry))
    if entry["status"] != "start":
        log.info(progress_line(read_notes(Path(target))))


def read_notes(folder: Path) -> list[dict[str, Any]]:
    notes = []
    for path in sorted(folder.glob("*.json")):
        try:
            notes.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # a note being replaced this instant: the next line says it
            continue
    return notes


def note_lost_job(num: int, name: str, reason: str, path: Path) -> None:
    """The submitter's note for a job that ended without saying how (killed, cancelled, timed out)."""
    _note({"status": "failed", "name": name, "reason": reason, "path": str(path)}, key=f"job{num}")


def progress_line(entries: list[dict[str, Any]]) -> str:
    """`sweep: 3/20 jobs done (1 failed), 2m10s elapsed, about 12m30s left` from the sweep log;
    jobs skipped for an existing record are said and left out of the rate."""
    start = next((e for e in entries if e["status"] == "start"), None)
    done = [e for e in entries if e["status"] not in ("start", "requeued")]
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
            total = None
        if not os.environ.get(SWEEP_LOG):  # this sweep's notes, in its own folder (shared by its jobs)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            folder = Path(str(config.hydra.sweep.dir)) / ".harness" / f"sweep-{stamp}-{os.getpid()}"
            folder.mkdir(parents=True, exist_ok=True)
            os.environ[SWEEP_LOG] = str(folder)
        if total is not None:
            _note({"status": "start", "total": total, "time": time.time()}, key="start")


class Stopped(KeyboardInterrupt):
    """SIGTERM / SIGINT to the command. A KeyboardInterrupt, because that is what makes joblib
    abort its pool and end the loky workers (left to itself, SIGTERM ended only the parent)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stops_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def sweep_summary() -> Iterator[None]:
    """Around Hydra: after a multirun with failed jobs, print one summary line and exit 1."""
    if os.environ.get(SWEEP_LOG):  # a nested call (a test, a job) reports to the outer one
        yield
        return
    try:
        with stops_interrupt():
            yield  # SweepProgress names the notes folder when a multirun starts
        target = os.environ.get(SWEEP_LOG)
        entries = read_notes(Path(target)) if target else []
        entries = [e for e in entries if e["status"] != "start"]  # SweepProgress's note of the sweep's size
    except Stopped as stop:
        print(f"error: sweep stopped by {signal.Signals(stop.signum).name}; finished records are kept "
              "(rerun the same command to resume)", file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    finally:
        os.environ.pop(SWEEP_LOG, None)
    failed = [e for e in entries if e["status"] == "failed"]
    if failed:
        first = failed[0]
        print(f"error: {len(failed)} of {len(entries)} jobs failed (first: {first['name']}: {first['reason']}); "
              f"failure records: {', '.join(e['path'] for e in failed[:3])}"
              f"{' ...' if len(failed) > 3 else ''}", file=sys.stderr)
        raise SystemExit(1)
