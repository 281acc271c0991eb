"""What the Slurm launcher writes into each job's sbatch script beyond submitit's defaults
(launchers/README.md, "Requeue, the job's environment and time limits").

- `#SBATCH --requeue` (launcher key `requeue`, default true): a site whose slurm.conf says JobRequeue=0
  would otherwise cancel a preempted or node-failed job instead of requeueing it.
- No `--wckey` unless the launcher key `wckey` is set: submitit writes `--wckey=submitit` by default,
  and a site that enforces workload keys rejects a key it does not know.
- `export` lines for the job's environment, so jobs see what the submitting shell saw even where sbatch
  passes no environment (--export=NONE): the artifact store (INTROSPECTION_CACHE, the submitter's value or
  its default, so every job of a sweep shares one store), the Hugging Face cache and offline switches, the
  W&B settings, the job's signal_delay_s (introspection/finetune/time_limit.py) and SRUN_CPUS_PER_TASK. Secrets
  (HF_TOKEN, WANDB_API_KEY, anything introspection.core.secrets calls secret) are never written: the script
  sits on a shared disk. A comment names those the submitting shell has; sbatch passes them in the
  environment (or `hf auth login` / `wandb login` store them under the user's home).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from introspection.core.secrets import is_secret_key

PASSED_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PASSED_ENV_PREFIXES = ("WANDB_",)
STORE_ENV = "INTROSPECTION_CACHE"
SIGNAL_DELAY_ENV = "INTROSPECTION_SIGNAL_DELAY_S"  # read by introspection.finetune.time_limit


def passed_env_lines(environ: dict[str, str], already_set: set[str]) -> list[str]:
    """`export NAME=value` for the submitting environment's Hugging Face and W&B settings (never a secret)."""
    names = sorted(n for n in environ if (n in PASSED_ENV or n.startswith(PASSED_ENV_PREFIXES))
                   and not is_secret_key(n) and n not in already_set)
    return [f"export {n}={shlex.quote(environ[n])}" for n in names]


def secret_names_line(environ: dict[str, str]) -> list[str]:
    """A comment naming the secrets the job takes from sbatch's environment (values are never written)."""
    names = sorted(n for n in environ if is_secret_key(n) and environ[n]
                   and (n.startswith(("HF_", "HUGGING_FACE_")) or n.startswith(PASSED_ENV_PREFIXES)))
    if not names:
        return []
    return [f"# from sbatch's environment, not written here: {' '.join(names)}"]


def store_line(environ: dict[str, str]) -> str:
    """The artifact store every job of the sweep uses: INTROSPECTION_CACHE as the submitter resolves it
    (its value, or the default ~/.cache/introspection of the submitting user)."""
    value = environ.get(STORE_ENV)
    if value is None:
        store = Path(environ.get("HOME") or Path.home()) / ".cache" / "introspection"
    elif not value.strip():
        raise ValueError(f"{STORE_ENV} is set but empty in the submitting environment; unset it (default "
                         "~/.cache/introspection) or point it at a folder every node sees")
    else:
        store = Path(value).expanduser()
    return f"export {STORE_ENV}={shlex.quote(str(store))}"


def with_job_environment(params: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """The launcher params as submitit should receive them: environment lines first in `setup`, and
    `requeue` turned into its sbatch flag."""
    params = dict(params)
    setup = list(params.get("setup") or [])
    exported = {m.group(1) for line in setup if (m := re.match(r"\s*export\s+(\w+)=", line))}
    lines = secret_names_line(environ) + passed_env_lines(environ, exported)
    if STORE_ENV not in exported:
        lines.append(store_line(environ))
    if SIGNAL_DELAY_ENV not in exported and params.get("signal_delay_s") is not None:
        lines.append(f"export {SIGNAL_DELAY_ENV}={int(params['signal_delay_s'])}")
    if params.get("cpus_per_task"):
        # On Slurm 22.05-23.02, srun does not inherit the job's --cpus-per-task: the job's one srun step
        # (where the experiment runs) would get a single CPU.
        lines.append(f"export SRUN_CPUS_PER_TASK={int(params['cpus_per_task'])}")
    params["setup"] = lines + setup
    requeue = params.pop("requeue", True)
    extra = dict(params.get("additional_parameters") or {})
    if not any(k.replace("_", "-") in ("requeue", "no-requeue") for k in extra):
        extra["requeue" if requeue else "no-requeue"] = True  # `#SBATCH --requeue` / `--no-requeue`
    params["additional_parameters"] = extra
    return params


def without_default_wckey(executor, wckey: str | None) -> None:
    """submitit writes `--wckey=submitit` unless its wckey is None, and AutoExecutor drops None values:
    so the SlurmExecutor itself gets the user's key, or None."""
    executor._executor.update_parameters(wckey=wckey or None)
