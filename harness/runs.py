"""What every run shares, whatever loop it is: its identity, its folders, its logger, its errors."""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from harness.api import ConfigError
from harness.identity import config_hash, run_stem
from harness.provenance import environment
from harness.records import FAILURE_SUFFIX, Cost, RunRecord, read_record, write_record

log = logging.getLogger(__name__)


def _register_resolvers() -> None:
    """`${unique_dir:<path>}` in configs: the run folder, claimed for this command alone."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("unique_dir"):  # cached: one invocation, one folder (jobs get the cache)
        OmegaConf.register_new_resolver("unique_dir", claim_folder, use_cache=True)


def claim_folder(path: str) -> str:
    """`path`, or `path-2`, `path-3`, ... : the first that this call creates. Run folders are named
    by the second they start in; two commands started in one second would otherwise share one."""
    base = Path(path)
    for n in range(1, 1000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir(parents=True)
            return str(candidate)
        except FileExistsError:
            continue
    raise ConfigError(f"no free run folder next to {base} (999 taken)")


_register_resolvers()


@dataclass(frozen=True)
class RunInfo:
    """Names come from Hydra's group choices, so the record says what the command line said."""

    experiment: str
    task: str
    method: str
    mode: str
    seed: int
    output_dir: Path  # Hydra's run folder: logs, W&B files, progress.jsonl
    record_dir: Path  # results/<experiment>/ for paper runs, else the run folder
    config: dict[str, Any]  # the resolved config (harness.runs.resolved_config)
    config_hash: str        # its identity (harness.identity): in the record and its file name

    @classmethod
    def from_config(cls, cfg: Any, method_group: str) -> "RunInfo":
        from hydra.core.hydra_config import HydraConfig

        runtime = HydraConfig.get().runtime
        if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
            raise ConfigError(f"seed must be an integer, got {cfg.seed!r}")
        output_dir = Path(runtime.output_dir)
        config = resolved_config(cfg)
        return cls(
            experiment=runtime.choices.get("experiment") or "adhoc",
            task=runtime.choices["task"],
            # An experiment whose rows are settings of one config (e.g. a dropout sweep) names them
            # with a top-level `method:`; otherwise the method is the group choice.
            method=str(cfg.get("method") or runtime.choices[method_group]),
            mode=str(cfg.mode),
            seed=int(cfg.seed),
            output_dir=output_dir,
            record_dir=records_folder(cfg.get("results_dir"), output_dir),
            config=config, config_hash=config_hash(config),
        )

    @property
    def name(self) -> str:
        return run_stem(self.task, self.method, self.seed, self.config_hash)

    @property
    def record_path(self) -> Path:
        return self.record_dir / f"{self.name}.json"


def records_folder(results_dir: str | None, output_dir: Path) -> Path:
    """Where the record goes: `results_dir` relative to the folder the command runs in (paper
    experiments: results/<experiment>/), or the Hydra run folder when there is none."""
    return Path(results_dir) if results_dir else output_dir


def is_main_process() -> bool:
    """Rank 0 under torchrun (or the only process): the one that logs, journals and records."""
    return int(os.environ.get("RANK", 0)) == 0


def check_writable(directory: Path) -> None:
    """Before the run, not after it: a results folder that cannot be written is a config error."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"results_dir: cannot write to {directory} ({exc.strerror or exc})") from None


def previous_record(cfg: Any, info: RunInfo, code: dict[str, Any] | None = None) -> RunRecord | None:
    """The finished record of this very config, when `skip_done` says not to redo it.

    Only an identical config counts: records of the same task, method and seed under other
    settings sit beside it under other hashes and are never returned for this one. Nor is a record
    made by other code (`code`: harness.code_identity): the run is redone and its record replaced.
    """
    if not cfg.skip_done or not info.record_path.exists():
        return None
    record = read_record(info.record_path)
    if record.config_hash != info.config_hash:  # a hand-renamed file: do not trust the name
        raise ConfigError(f"{info.record_path} holds config {record.config_hash}, not "
                          f"{info.config_hash}: move it away or set skip_done=false")
    if code and "code_hash" in record.provenance and record.provenance["code_hash"] != code["code_hash"]:
        from harness.code_identity import changed_modules

        log.warning("record %s was made by other code (%s changed): rerunning", info.record_path,
                    ", ".join(changed_modules(record.provenance, code)) or "a module")
        return None
    log.info("record of this config exists, skipping (skip_done=false reruns it): %s", info.record_path)
    return record


def save_record(info: RunInfo, metrics: dict[str, float], curve: list[dict[str, Any]],
                started: float, code_version: str, llm_usage: Any = None, logger: Any = None,
                earlier_seconds: float = 0.0, llm_models: dict[str, int] | None = None,
                samples: list[dict[str, Any]] | None = None,
                extra_provenance: dict[str, Any] | None = None) -> RunRecord:
    """Write the finished run's record (atomically) where its mode says records go.

    `llm_usage` (a trace_core.llm.Usage, when the method asked a language model) fills the cost;
    `llm_models` are the model names the endpoints said answered, with their reply counts;
    `earlier_seconds` are those of the attempts a resumed run continues; `samples` (the task's
    per-example test outputs) go beside the record (harness.samples).
    """
    cost = Cost(seconds=earlier_seconds + time.perf_counter() - started)
    if llm_usage is not None:
        cost.llm_calls, cost.cache_hits = llm_usage.calls, llm_usage.cache_hits
        cost.prompt_tokens, cost.completion_tokens = llm_usage.prompt_tokens, llm_usage.completion_tokens
        cost.llm_seconds = llm_usage.seconds
    cost.llm_models = ", ".join(f"{name} x{n}" for name, n in sorted((llm_models or {}).items()))
    record = RunRecord(experiment=info.experiment, task=info.task, method=info.method,
                       seed=info.seed, mode=info.mode, metrics=metrics, curve=curve,
                       cost=cost, config=info.config, git_sha=code_version,
                       config_hash=info.config_hash,
                       provenance={**run_provenance(info, logger), **(extra_provenance or {})})
    if not is_main_process():
        return record  # rank 0 writes the one record of a DDP run
    path = write_record(record, info.record_dir)
    if samples:
        from harness.samples import write_samples

        write_samples(samples, path)
    (info.record_dir / f"{info.name}{FAILURE_SUFFIX}").unlink(missing_ok=True)  # an earlier failed attempt
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    log.info("%s: %s -> %s", info.name, shown, path)
    return record


def run_provenance(info: RunInfo, logger: Any) -> dict[str, Any]:
    return {**environment(), "run_dir": str(info.output_dir.resolve()),
            "wandb_run_id": getattr(logger, "run_id", None)}


def resolved_config(cfg: Any) -> dict[str, Any]:
    """The run's whole configuration, interpolations resolved, Hydra's own node left out."""
    from omegaconf import OmegaConf

    # Mask Hydra's node out first: parts of it only resolve inside a launched job.
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]),
                                  resolve=True)


def make_logger(cfg: Any, info: RunInfo, higher_is_better: bool | None = None) -> Any:
    """The run's experiment logger. Its W&B id is the config hash, so a rerun of the same run (a
    killed job run again, a resumed training) continues the same W&B run instead of leaving an empty
    one beside a second of the same name. Its group is `<experiment>/<method>`: W&B groups by it by
    default, so the workspace draws one curve per method (mean over seeds). Its config says which
    run it is (method, experiment, mode, task, seed, hash) and its job type which loop made it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from harness.loggers import NullLogger

    if not is_main_process():
        return NullLogger()  # one W&B run per run, not one per DDP process
    identity = {"experiment": info.experiment, "method": info.method, "task": info.task, "mode": info.mode,
                "seed": info.seed, "config_hash": info.config_hash}
    return instantiate(cfg.logger)(name=info.name, directory=info.output_dir, config=info.config,
                                   group=f"{info.experiment}/{info.method}", run_id=info.config_hash,
                                   identity=identity, job_type=HydraConfig.get().job.name,
                                   higher_is_better=higher_is_better)


def user_error_message(exc: BaseException) -> str | None:
    """The one line to show for a mistake in the config or the command line, or None for a bug."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from trace_core.llm import LLMError  # an endpoint that failed for good: its message is one line

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConfigError, LLMError)):
            return str(exc)
        if isinstance(exc, (OmegaConfBaseException, HydraException)) and not _wraps_user_error(exc):
            cause = exc.__cause__
            reason = f": {str(cause).splitlines()[0]}" if isinstance(cause, OmegaConfBaseException) and str(cause) else ""
            return _one_line(str(exc)) + reason  # e.g. which override, then why (a type)
        exc = exc.__cause__ or exc.__context__
    return None


def _wraps_user_error(exc: BaseException) -> bool:
    """Hydra's InstantiationException wraps the real error; report that one instead, unless it is a
    constructor refusing a value (ValueError): then the exception's own line names the key."""
    wraps = exc.__cause__ is not None and type(exc).__name__ == "InstantiationException"
    return wraps and type(exc.__cause__) is not ValueError


def _one_line(message: str) -> str:
    """Hydra's messages run over several lines: keep the first paragraph, and the options on offer."""
    paragraphs = [p.split("\n") for p in message.strip().split("\n\n")]
    line = " ".join(part.strip() for part in paragraphs[0] if part.strip())
    line = line.removeprefix("In 'optimize': ").removeprefix("In 'train': ")
    for paragraph in paragraphs[1:]:
        if paragraph[0].startswith("Available options"):
            options = []
            for entry in paragraph[1:]:
                if not entry.startswith("\t"):
                    break  # "Config search path:" follows the options
                options.append(entry.strip())
            line += f" (available: {', '.join(options)})"
    return line


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn config mistakes into `error: <one line>` and exit status 2; let real bugs raise."""
    try:
        yield
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
