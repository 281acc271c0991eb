"""The running Hydra job as the rest of the code sees it: its sweep's name and its command-line overrides.

Below config (whose `${sweep_group:}` resolver names a multirun job's W&B group), tracking (W&B config)
and sweep (the sweep table), so none of them imports another for it.
"""

from __future__ import annotations

from pathlib import Path

from introspection.core.secrets import is_secret_key


def sweep_name(sweep_dir: str | Path) -> str:
    """multirun/2026-11-26/20-43-00 -> 2026-11-26_20-43-00; /scratch/me/llama_grid -> llama_grid."""
    parts = Path(str(sweep_dir)).parts
    if "multirun" in parts:
        tail = parts[len(parts) - parts[::-1].index("multirun"):]
        if tail:
            return "_".join(tail)
    return Path(str(sweep_dir)).name


def sweep_group() -> str | None:
    """The sweep's name inside a multirun job; None in a single run or outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return sweep_name(hydra_cfg.sweep.dir)


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """["model=llama3_70b", "+x.y=1"] -> {"model": "llama3_70b", "x.y": "1"}."""
    out = {}
    for text in overrides:
        key, sep, value = str(text).partition("=")
        if sep:  # a credential's value stays out of tables and W&B (introspection/core/secrets.py)
            out[key.lstrip("+~")] = "<redacted>" if is_secret_key(key) else value
    return out


def job_overrides() -> dict[str, str]:
    """The command-line overrides of the running Hydra job (W&B config, so dashboards slice by them)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return parse_overrides(list(HydraConfig.get().overrides.task))
