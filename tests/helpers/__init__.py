"""Helpers shared by test modules (import them from here, never from another test module).

tests/test_hygiene.py fails when a test module imports another one. Submodules: `checks` (what a run
must leave behind: one-line errors, a consistent store, no secrets), `builders` (a store build killed
mid-way, run in a process of its own), `session` (the session's own cache folders, see tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The whole experiment at toy sizes: seconds of model work per stage on a CPU.
TINY_SIZES = ["tasks=smoke", "logger=none", "inference=hf",
              "tasks.n_train_items=8", "tasks.n_test_items=6", "tasks.n_finetune_per_property=8",
              "inference.max_tokens=12", "inference.max_tokens_hypothetical=4",
              # tiny pairs pin their finetune settings (other pairs default to the paper's LoRA)
              "finetune=demo", "finetune.multi_gpu=none",
              "finetune.epochs=1", "finetune.batch_size=4", "finetune.lora.r=4", "finetune.lora.alpha=8"]


def tiny_side(slot: str, path: Path | str, name: str) -> list[str]:
    """One side of the pair (model.m1 or model.m2) as a local tiny model from tests/tiny_model.py."""
    return [f"model.{slot}.source=local", f"model.{slot}.path={path}", f"model.{slot}.name={name}",
            f"model.{slot}.chat_template=null", f"model.{slot}.dtype=float32"]


def tiny_overrides(tiny_pair: tuple[Path, Path], store: Path) -> list[str]:
    """Overrides of `python -m introspection.main` for the pair (tiny_a, tiny_b) and this artifact store."""
    a, b = tiny_pair
    return [*TINY_SIZES, f"store_dir={store}", *tiny_side("m1", a, "tiny_a"), *tiny_side("m2", b, "tiny_b")]


def run_main(args: list[str], *, spawn: bool = False, check: bool = True, env: dict | None = None,
             timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m introspection.main ARGS`: its exit code, stdout and stderr (asserts code 0 unless check=False).

    In this process by default (no Python, torch and transformers start-up per run: see run_in_process); the
    model workers are spawned processes either way. spawn=True starts a process of its own, for tests of the
    command line itself (output written by worker processes, an environment of its own, signals)."""
    if spawn or env is not None:
        proc = subprocess.run([sys.executable, "-m", "introspection.main", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, env=env)
    else:
        proc = run_in_process(args)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def run_in_process(args: list[str]) -> subprocess.CompletedProcess:
    """The entry point run as `python -m introspection.main ARGS` would run it, in this process.

    runpy executes introspection/main.py as __main__, so Hydra finds conf/ from the file and names the job
    `main`, as on the command line. Hydra's global state (its config and the run's config), sys.argv and the logging handlers Hydra installs
    are restored afterwards; what the run prints (its own logging included) is captured. A worker process
    writes to the real stdout and stderr, so its output is not in the result (spawn=True has it)."""
    import contextlib
    import io
    import logging
    import os
    import runpy
    import warnings

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level, saved_argv, saved_cwd = root.handlers[:], root.level, sys.argv, os.getcwd()
    code: int | str | None = 0
    GlobalHydra.instance().clear()
    sys.argv = ["introspection/main.py", *args]
    try:
        os.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            # A module that imported introspection.main keeps that copy; this run executes its own, as `-m` would.
            warnings.filterwarnings("ignore", "'introspection.main' found in sys.modules", RuntimeWarning)
            try:
                runpy.run_module("introspection.main", run_name="__main__", alter_sys=True)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # else introspection.core.errors would take later calls for a Hydra job
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()  # Hydra's file handler on the run folder's log
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["introspection.main", *args], returncode, out.getvalue(), err.getvalue())


def compose_cfg(overrides: list[str]):
    """The experiment config as the entry point composes it (conf/config.yaml plus the overrides)."""
    from hydra import compose, initialize_config_dir

    from introspection.cli import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)
