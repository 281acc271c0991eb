"""Submitit launchers (conf/hydra/launcher/{slurm,local}.yaml) that size every job from its own config.

hydra-submitit-launcher builds one executor from the sweep's base config, so in
`-m model=llama3_8b,llama3_70b` both jobs would get the GPUs of the default model. Here each job's
config is composed (as the job itself will compose it) and its `hydra.launcher` block resolved:
    SlurmLauncher  jobs that need the same resources go out together as one job array, so a sweep over
                   model pairs becomes one array per resource shape, all submitted at once;
    LocalLauncher  jobs run one after another on this machine (two model jobs at once would compete for
                   the same GPUs), each seeing the GPUs 0..n-1 its model asks for.
Running a job is unchanged (the plugin's pickled `__call__`). Every job is awaited even when one
fails, and the sweep table is written before the failure is reported (Hydra skips its end-of-multirun
callbacks after a failed job).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

import introspection.core.config  # noqa: F401  (registers the resolvers the launcher configs use)
from hydra_plugins.introspection_launcher.job_script import with_job_environment, without_default_wckey
from introspection.core.errors import JOB_ERROR_FILE
from introspection.finetune import time_limit

try:  # the `slurm` extra; Hydra imports every plugin module at start, so its absence must not break that
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher as _PluginLocalLauncher
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _PluginSlurmLauncher
except ImportError:  # pragma: no cover  (hydra/launcher=slurm then reports an unknown plugin)
    BaseQueueConf = None
    _PluginLocalLauncher = _PluginSlurmLauncher = object

log = logging.getLogger(__name__)

EXECUTOR_INIT_KEYS = ("submitit_folder", "max_num_timeout")  # AutoExecutor(...) arguments, not update_parameters


class _PerJobResources:
    """Mixed into the plugin's launchers; relies on their `config`, `hydra_context` and `_EXECUTOR`."""

    _EXECUTOR: str

    def job_params(self, overrides: Sequence[str]) -> dict[str, Any]:
        """The resolved `hydra.launcher` block of the job with these sweep overrides."""
        job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        params = OmegaConf.to_container(job_cfg.hydra.launcher, resolve=True)
        params.pop("_target_", None)
        if not params.get("gpus_per_node"):  # 0 GPUs: no --gpus-per-node line (a cluster without GPUs refuses it)
            params["gpus_per_node"] = None
        return params

    def make_executor(self, params: dict[str, Any]):
        """A submitit executor for these launcher params, built as the plugin builds its one executor."""
        import submitit

        init = {"folder": params["submitit_folder"]}
        private_folder(params["submitit_folder"])
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v
                                      for k, v in params.items() if k not in EXECUTOR_INIT_KEYS})
        return executor

    def job_args(self, overrides: Sequence[str], idx: int) -> tuple:
        """The arguments of the plugin's remote `__call__` for job number idx."""
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        return (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())

    def prepare_sweep_dir(self) -> None:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info("Submitit '%s' sweep output dir : %s", self._EXECUTOR, sweep_dir)

    @staticmethod
    def wait(job) -> JobReturn:
        """The job's JobReturn; a job that died outside Hydra (node failure, OOM kill, time limit) becomes
        a FAILED one, so the other jobs are still awaited."""
        try:
            return job.results()[0]
        except Exception as e:
            log.error("job %s ended without a result: %s", job.job_id, e)
            ret = JobReturn(status=JobStatus.FAILED)
            ret.return_value = e
            return ret

    def finish(self, returns: list[JobReturn], job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        if any(r.status == JobStatus.FAILED for r in returns):
            from introspection.outputs.sweep import end_sweep, launcher_failures

            # Hydra would raise for the failed job and skip on_multirun_end: the sweep table (with these
            # jobs' error lines), the one-line summary and exit code 2, as SweepTable does for error.txt.
            end_sweep(self.config, launcher_failures(returns, job_overrides, initial_job_idx))
        return returns


def private_folder(submitit_folder: str) -> Path:
    """Create the submitit folder's fixed part (before any %j / %A placeholder) readable by its owner only.

    It holds each job's pickle, and a pickle carries the job's whole config, including a credential given
    on the command line (+logger.api_key=...): the sweep folder usually sits on a shared disk. Slurm runs
    the jobs as the submitting user, who keeps full access."""
    folder = str(submitit_folder)
    prefix = re.split(r"%[a-zA-Z]", folder, maxsplit=1)[0]
    # ".submitit/%j" -> ".submitit"; ".submitit/job_%j" -> ".submitit" (a placeholder inside a name)
    base = Path(prefix) if prefix == folder or prefix.endswith(os.sep) else Path(prefix).parent
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return base


class _Termination:
    """Records a SIGTERM to this process (Slurm requeue, preemption, scancel) instead of dying at once, as
    submitit's own handler does; `time` is when it came."""

    def __init__(self) -> None:
        self.time: float | None = None
        signal.signal(signal.SIGTERM, self._record)

    def _record(self, signum, frame) -> None:
        if self.time is None:
            log.warning("SIGTERM: Slurm is ending this attempt (requeue, preemption or scancel); "
                        "the job stops without a result and a requeued attempt resumes from the artifact store")
        self.time = time.time()


def _end_attempt_without_result(ret: JobReturn | None, attempt_started: float) -> None:
    """Exit before submitit writes this attempt's result: a job that Slurm requeues must be judged by its
    next attempt. Slurm's SIGTERM also reached the job's model workers, so the failure this attempt may
    have recorded (error.txt) is the signal's doing, not the job's: it goes too."""
    if ret is not None and ret.hydra_cfg is not None:
        error_file = Path(str(ret.hydra_cfg.hydra.runtime.output_dir)) / JOB_ERROR_FILE
        if error_file.is_file() and error_file.stat().st_mtime >= attempt_started:
            error_file.unlink()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signal.SIGTERM)


def in_slurm_queue(job_id: str) -> bool | None:
    """Whether squeue still lists the job (pending, running, requeued, completing); None if squeue
    cannot tell (controller unreachable)."""
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return False if "invalid job id" in out.stderr.lower() else None
    return bool(out.stdout.strip())


class SlurmLauncher(_PerJobResources, _PluginSlurmLauncher):
    # A job that squeue no longer lists and that left no result for this long ended outside Python
    # (scancel, node failure, OOM kill). submitit learns that from sacct; clusters without accounting
    # (slurmdbd) have no sacct, and submitit would wait for ever.
    LEFT_QUEUE_GRACE_S = 90.0
    QUEUE_POLL_S = 5.0

    def wait(self, job) -> JobReturn:
        left_since = None
        while not job.done():
            listed = in_slurm_queue(str(job.job_id))
            if listed is False:
                left_since = left_since or time.monotonic()
                if time.monotonic() - left_since > self.LEFT_QUEUE_GRACE_S:
                    log.error("job %s left the Slurm queue without a result", job.job_id)
                    ret = JobReturn(status=JobStatus.FAILED)
                    ret.return_value = RuntimeError(f"job {job.job_id} left the Slurm queue without a result "
                                                    "(cancelled, killed or its node failed)")
                    return ret
            else:
                left_since = None
            time.sleep(self.QUEUE_POLL_S)
        return super().wait(job)

    def __call__(self, sweep_overrides, job_dir_key, job_num, job_id, singleton_state) -> JobReturn:
        """The job itself, on the compute node: the plugin's run, ended without a result if Slurm
        terminated this attempt meanwhile."""
        attempt_started, termination = time.time(), _Termination()
        # submitit's SIGUSR2 handler (time limit: requeue) waits for a finetune in flight to checkpoint.
        time_limit.install()
        ret = None
        try:
            ret = super().__call__(sweep_overrides, job_dir_key, job_num, job_id, singleton_state)
        finally:
            if termination.time is not None:
                _end_attempt_without_result(ret, attempt_started)
        return ret

    def job_params(self, overrides: Sequence[str]) -> dict[str, Any]:
        return with_job_environment(super().job_params(overrides), dict(os.environ))

    def make_executor(self, params: dict[str, Any]):
        executor = super().make_executor(params)
        without_default_wckey(executor, params.get("wckey"))
        return executor

    def plan(self, job_overrides: Sequence[Sequence[str]]) -> list[tuple[dict[str, Any], list[int]]]:
        """Jobs grouped by identical launcher params: [(params, [job positions])], in first-seen order."""
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for i, overrides in enumerate(job_overrides):
            params = self.job_params(overrides)
            groups.setdefault(json.dumps(params, sort_keys=True, default=str), (params, []))[1].append(i)
        return list(groups.values())

    def submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """Submit every job (one array per resource shape) and return the submitit jobs in sweep order."""
        self.prepare_sweep_dir()
        jobs: list = [None] * len(job_overrides)
        for params, positions in self.plan(job_overrides):
            log.info("array of %d job(s): %d GPU(s), %s CPUs, %s GB, %s min, partition %s", len(positions),
                     params.get("gpus_per_node") or 0, params.get("cpus_per_task"), params.get("mem_gb"),
                     params.get("timeout_min"), params.get("partition"))
            executor = self.make_executor(params)
            args = [self.job_args(job_overrides[i], initial_job_idx + i) for i in positions]
            for i, job in zip(positions, executor.map_array(self, *zip(*args, strict=True)), strict=True):
                jobs[i] = job
        return jobs

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and len(job_overrides) > 0
        jobs = self.submit(job_overrides, initial_job_idx)
        return self.finish([self.wait(job) for job in jobs], job_overrides, initial_job_idx)


class LocalLauncher(_PerJobResources, _PluginLocalLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and len(job_overrides) > 0
        self.prepare_sweep_dir()
        returns = []
        for i, overrides in enumerate(job_overrides):
            executor = self.make_executor(self.job_params(overrides))
            returns.append(self.wait(executor.submit(self, *self.job_args(overrides, initial_job_idx + i))))
        return self.finish(returns, job_overrides, initial_job_idx)
