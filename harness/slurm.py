"""Hydra's submitit launcher for SLURM, as the harness needs it (configs/hydra/launcher/slurm*.yaml):

    python -m harness.optimize -m experiment=fig5b_traffic hydra/launcher=slurm
    python -m harness.train -m experiment=table5_1_fast hydra/launcher=slurm_gpu hydra.launcher.timeout_min=1440

What it changes, and why:
- The submitter waits for every job and says `sweep: k/N jobs done` as each ends. A job that ends
  without a result (scancel, killed, timed out, node lost) gets a failure record written for it,
  and the sweep goes on waiting for the others; the plugin stopped at the first such job with a
  raw `UncompletedJobError` and left the rest running unwatched.
- In the job, SIGTERM (scancel; SLURM's stop before a requeue) stops the run at once with a failure
  record (submitit only logged "Bypassing signal SIGTERM" and went on until SIGKILL). A training
  run saves its checkpoint first (dualformer.train), also on SIGUSR2, the pre-timeout signal,
  after which submitit requeues the job; the requeued run resumes from that checkpoint.
- A job of several tasks (`tasks_per_node`, one per GPU) is one DDP run, its tasks the ranks, set
  up as torchrun would; before, each task trained the whole model alone.
- `signal_delay_s` is checked against `timeout_min`: a signal due before the job has had half its
  time requeued a 1-minute job 9 s in.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
from omegaconf import OmegaConf, open_dict

from harness.api import ConfigError

log = logging.getLogger(__name__)
# SLURM states in which a job is over without having run to its end.
LOST_STATES = ("CANCELLED", "TIMEOUT", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE")
POLL_S = 1.0


class JobLost(RuntimeError):
    """A job that ended without a result: its failure record says how SLURM saw it end."""


def check_timing(params: dict[str, Any]) -> None:
    """One error line for a time limit the pre-timeout signal would eat (or that is not one)."""
    limit, delay = params.get("timeout_min"), params.get("signal_delay_s", 0)
    if not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"hydra.launcher.timeout_min must be a whole number of minutes >= 1, got {limit!r}")
    if not isinstance(delay, int) or delay < 0 or 2 * delay > limit * 60:
        raise ConfigError(f"hydra.launcher.signal_delay_s={delay!r} with timeout_min={limit}: the pre-timeout "
                          f"signal would come {limit * 60 - delay if isinstance(delay, int) else '?'} s into the job; "
                          f"give signal_delay_s between 0 and {limit * 30} (half the limit) or a longer timeout_min")
    if params.get("array_parallelism", 1) < 1:
        raise ConfigError(f"hydra.launcher.array_parallelism must be >= 1, got {params['array_parallelism']!r}")


def _stop(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # harness.sweep.failures_recorded writes the failure record


def ddp_from_slurm() -> None:
    """A job of several tasks (slurm_gpu: tasks_per_node = GPUs per node) is one DDP run: set what
    torchrun would (rank, world, rendezvous on the first node) from SLURM's view of this task."""
    import submitit

    job = submitit.JobEnvironment()
    if job.num_tasks < 2:
        return
    os.environ.update(RANK=str(job.global_rank), WORLD_SIZE=str(job.num_tasks), LOCAL_RANK=str(job.local_rank),
                      LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes), MASTER_ADDR=job.hostnames[0])
    # One port per job (its tasks agree on it; jobs sharing a node do not collide).
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))


class HarnessSlurmLauncher(SubmititSlurmLauncher):
    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_timing(self.params)

    # -- in the job ------------------------------------------------------------------------------
    def __call__(self, *args: Any) -> JobReturn:
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's: checkpoint (ourselves) and requeue
        signal.signal(signal.SIGTERM, _stop)
        ddp_from_slurm()
        try:
            return super().__call__(*args)
        except SystemExit as exc:
            if exc.code == 128 + signal.SIGUSR2 and callable(requeue):
                requeue(signal.SIGUSR2, None)  # the run stopped at a step and saved; now requeue it
            raise

    # -- in the submitter ------------------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit
        from hydra.core.singleton import Singleton

        params = dict(self.params)
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                         slurm_max_num_timeout=params.pop("max_num_timeout", 0))
        shared = set(OmegaConf.structured(BaseQueueConf).keys())  # the rest are sbatch's own: slurm_<name>
        executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        nums = list(range(initial_job_idx, initial_job_idx + len(job_overrides)))
        state = Singleton.get_state()
        jobs = executor.map_array(self, [list(o) for o in job_overrides], ["hydra.sweep.dir"] * len(nums),
                                  nums, [f"job_id_for_{n}" for n in nums], [state] * len(nums))
        array = jobs[0].job_id.split("_")[0]
        log.info("submitted %d jobs to SLURM (array %s); output in %s", len(jobs), array, self.config.hydra.sweep.dir)
        try:
            return self._wait(jobs, job_overrides, nums)
        except KeyboardInterrupt:  # Ctrl-C / SIGTERM to the submitter: the cluster's jobs are not its to end
            log.error("stopped waiting; the sweep's jobs go on (scancel %s ends them)", array)
            raise

    def _wait(self, jobs: list[Any], job_overrides: Sequence[Sequence[str]], nums: list[int]) -> list[JobReturn]:
        """Collect every job as it ends, whatever the order; one that gives no result is recorded."""
        from harness.sweep import SWEEP_LOG, progress_line, read_notes

        returns: dict[int, JobReturn] = {}
        while len(returns) < len(jobs):
            ended = [(job, overrides, num) for job, overrides, num in zip(jobs, job_overrides, nums)
                     if num not in returns and job.done()]
            for job, overrides, num in ended:
                returns[num] = self._collect(job, list(overrides), num)
            if ended and os.environ.get(SWEEP_LOG):  # on the submitter's console, as jobs end
                log.info(progress_line(read_notes(Path(os.environ[SWEEP_LOG]))))
            if len(returns) < len(jobs):
                time.sleep(POLL_S)
        return [returns[n] for n in nums]

    def _collect(self, job: Any, overrides: list[str], num: int) -> JobReturn:
        lost = not job.paths.result_pickle.exists() and job.state.split()[0] in LOST_STATES
        if not lost:
            try:
                return job.results()[0]
            except Exception as exc:  # noqa: BLE001 (no result, or a crash outside the run: said below)
                reason = str(exc).strip().splitlines()[-1] if "trace" in str(exc) else f"no result ({job.state})"
        else:
            reason = f"ended {job.state} without a result"
        self._record_lost(num, overrides, f"SLURM job {job.job_id} {reason}")
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)

    def _record_lost(self, num: int, overrides: list[str], reason: str) -> None:
        """The failure record a job could not write itself (it was killed), unless it wrote one."""
        from hydra.core.hydra_config import HydraConfig

        from harness.sweep import SWEEP_LOG, note_lost_job, write_failure

        try:  # the job's own note (harness.sweep), when it lived to write one
            own = json.loads((Path(os.environ[SWEEP_LOG]) / f"job{num}.json").read_text())["status"] == "failed"
        except (KeyError, OSError, ValueError):
            own = False
        if own:
            log.error("job %d: %s (its failure record says more)", num, reason)
            return  # stopped by SIGTERM: it wrote its own record, with the step it reached
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.num = num
            cfg.hydra.runtime.output_dir = str(Path(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir)).absolute())
        saved = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(cfg)
        try:
            path, name, reason = write_failure(cfg, "model" if "model" in cfg else "optimizer", JobLost(reason),
                                               reason=reason)
        finally:
            HydraConfig.instance().cfg = saved
        log.error("job %s failed: %s (failure record %s)", name, reason, path)
        note_lost_job(num, name, reason, path)
