"""Secrets and safety: W&B and Hugging Face tokens never reach logs, saved configs or the W&B run, and
remote code is trusted only where a model config turns trust_remote_code on.

The whole pipeline is checked for tokens too: every run of tests/test_faults.py carries the fake tokens
(SECRETS in tests/helpers/checks.py) in its environment, ends with a W&B (offline) run, and asserts that
none of its files or logs holds them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from introspection.cli import CONF_DIR, group_options
from tests.helpers import run_main
from tests.helpers.checks import SECRETS, secrets_found

ROOT = Path(__file__).resolve().parents[1]

def test_tokens_in_the_environment_reach_no_file_log_or_wandb_run(tmp_path):
    run_dir, store = tmp_path / "run", tmp_path / "store"
    env = {**os.environ, **SECRETS, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "introspection.main", "tasks=smoke", "experiment.stop_after=build", "logger=wandb",
         f"hydra.run.dir={run_dir}", f"store_dir={store}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb")), "no W&B offline run was written"
    for f in ("results.json", ".hydra/config.yaml", ".hydra/overrides.yaml", "main.log"):
        assert (run_dir / f).is_file(), f
    assert secrets_found([run_dir, store], [proc.stdout, proc.stderr]) == []


def test_config_values_under_secret_names_are_redacted_in_results_and_wandb(tmp_path, monkeypatch):
    from introspection.outputs import run_outputs as tracking

    cfg = OmegaConf.create({
        "experiment": {"name": "cross_prediction", "noncompliant": "wrong",
                       "options": {"hf_token": SECRETS["HF_TOKEN"], "nested": [{"WANDB_API_KEY": SECRETS["WANDB_API_KEY"]}],
                                   "Password": "hunter2", "client_secret": "s3cr3t", "max_tokens": 48}},
        "logger": {"backend": "wandb", "project": "p", "entity": None, "mode": "offline", "group": None, "tags": []},
    })
    results = {"cells": [], "pairs": [], "models": {}, "n_items": {}}
    tracking.write_results(results, cfg, tmp_path)
    saved = (tmp_path / "results.json").read_text()
    for value in (*SECRETS.values(), "hunter2", "s3cr3t"):
        assert value not in saved
    assert '"max_tokens": 48' in saved  # a number under a name with "token" in it is kept

    # What log_results hands to W&B, caught by a stand-in module.
    seen = {}

    class Run:
        summary: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def log(self, payload):
            seen["logged"] = payload

    def init(**kwargs):
        seen["init"] = kwargs
        return Run()

    fake = SimpleNamespace(init=init, Settings=lambda **kw: kw, Table=lambda **kw: kw, Image=lambda *a: a)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr(tracking, "job_overrides", lambda: [])
    tracking.log_results(results, cfg, tmp_path)
    sent = repr(seen["init"]["config"])
    for value in (*SECRETS.values(), "hunter2", "s3cr3t"):
        assert value not in sent
    assert seen["init"]["config"]["experiment"]["options"]["hf_token"] == "<redacted>"


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.mark.parametrize("option", group_options("model"))
def test_every_model_pair_leaves_trust_remote_code_off(option):
    cfg = _compose([f"model={option}"])
    for slot in ("m1", "m2"):
        assert cfg.model[slot].trust_remote_code is False, f"conf/model/{option}.yaml {slot}"


@pytest.mark.parametrize("entry", sorted(p.stem for p in (CONF_DIR / "model" / "llm").glob("*.yaml")))
def test_every_model_entry_leaves_trust_remote_code_off(entry):
    assert _compose([f"model/llm@model.m1={entry}"]).model.m1.trust_remote_code is False


def test_no_code_or_config_turns_trust_remote_code_on():
    from introspection.core.config import ModelEntry
    from introspection.weights.resolve import ResolvedModel

    assert ModelEntry.trust_remote_code is False and ResolvedModel.__dataclass_fields__["trust_remote_code"].default is False
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        assert not re.search(r"trust_remote_code\s*:\s*(true|yes|on)\b", path.read_text(), re.I), path
    # Every place the library passes trust_remote_code on, it passes the model config's value (or False).
    allowed = re.compile(r"^(False|trust_remote_code|[\w.]+\.trust_remote_code)$")
    for path in sorted((ROOT / "introspection").rglob("*.py")):
        text = path.read_text()
        for value in re.findall(r"trust_remote_code\s*=\s*([^,)\s]+)", text):
            assert allowed.match(value), f"{path.relative_to(ROOT)}: trust_remote_code={value}"
        for value in re.findall(r"trust_remote_code\s*:\s*bool\s*=\s*(\w+)", text):
            assert value == "False", f"{path.relative_to(ROOT)}: trust_remote_code default {value}"


def test_trust_remote_code_follows_the_model_config(tiny_model_dir, tmp_path):
    from introspection.core.config import ModelEntry
    from introspection.weights.resolve import resolve_model

    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir))
    assert resolve_model(entry, tmp_path).trust_remote_code is False
    entry.trust_remote_code = True
    assert resolve_model(entry, tmp_path).trust_remote_code is True


# --- credentials given in the config or on the command line (introspection/core/secrets.py) ---------------
OVERRIDE_SECRET = "ovrSecretIntrospection0123456789"  # given on the command line under secret keys


def test_the_secret_key_rule():
    from introspection.core.secrets import is_secret_key, redact, redact_override, scrub

    for key in ("hf_token", "api_key", "WANDB_API_KEY", "apiKey", "Password", "client_secret", "key", "passwd",
                "logger.api_key", "hydra.job.env_set.HF_TOKEN", "client_secret_file", "credentials"):
        assert is_secret_key(key), key
    for key in ("max_tokens", "tokenizer", "keys", "chars_per_token", "pad_token", "eos_token", "name", "path",
                "model/llm@model.m1", "monkey"):
        assert not is_secret_key(key), key
    cfg = {"a": {"api_key": 12345, "hf_token": "abcd", "use_token": True, "ratio_token": 0.5, "max_tokens": 48,
                 "tokenizer": "x/y", "credentials": {"user": "u", "pass": ["p1"]}, "note": "see abcd"}}
    assert redact(cfg, {"abcd"}) == {"a": {
        "api_key": "<redacted>", "hf_token": "<redacted>", "use_token": True, "ratio_token": 0.5, "max_tokens": 48,
        "tokenizer": "x/y", "credentials": {"user": "<redacted>", "pass": ["<redacted>"]}, "note": "see <redacted>"}}
    assert redact_override("+logger.api_key=XYZ") == "+logger.api_key=<redacted>"
    assert redact_override("++hydra.job.env_set.WANDB_API_KEY=a,b") == "++hydra.job.env_set.WANDB_API_KEY=<redacted>"
    assert redact_override("tasks=smoke") == "tasks=smoke"
    assert scrub("run x=abc and y=abcdef", {"abc", "abcdef"}) == "run x=abc and y=<redacted>"  # shorter: too common


def test_sweep_tables_read_overrides_without_credentials():
    from introspection.outputs.sweep import parse_overrides

    assert parse_overrides(["+logger.api_key=XYZ", "seed=1", "preflight.chars_per_token=3.5"]) == {
        "logger.api_key": "<redacted>", "seed": "1", "preflight.chars_per_token": "3.5"}


def _run_main(args: list[str], spawn: bool = True) -> subprocess.CompletedProcess:
    """The entry point offline. spawn=False: in this process (tests/helpers run_main), for a run that starts no
    other process (no W&B service, no worker) whose output the check must also read."""
    if not spawn:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WANDB_MODE", "offline")
            return run_main(args, check=False)
    return subprocess.run([sys.executable, "-m", "introspection.main", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"})


def _assert_nowhere(value: str, folders: list[Path], texts: list[str]) -> None:
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                assert value.encode() not in path.read_bytes(), path
    for text in texts:
        assert value not in text


def test_secret_overrides_reach_no_file_of_a_run_nor_its_wandb_run(tmp_path):
    """Values under secret keys of the config (preflight.throughput takes any key) and in Hydra's env_set:
    .hydra/*.yaml, results.json, report.md, main.log and the W&B offline run hold none of them."""
    run_dir, store = tmp_path / "run", tmp_path / "store"
    secrets = {f"{OVERRIDE_SECRET}a": "+preflight.throughput.api_key", f"{OVERRIDE_SECRET}b": "+preflight.throughput.auth.hf_token",
               f"{OVERRIDE_SECRET}c": "+hydra.job.env_set.WANDB_API_KEY"}
    proc = _run_main(["tasks=smoke", "experiment.stop_after=build", "logger=wandb", f"hydra.run.dir={run_dir}",
                      f"store_dir={store}", *(f"{key}={value}" for value, key in secrets.items())])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb")), "no W&B offline run was written"
    for f in ("results.json", "report.md", "main.log", ".hydra/config.yaml", ".hydra/hydra.yaml"):
        assert (run_dir / f).is_file(), f
    for value in secrets:
        _assert_nowhere(value, [run_dir, store], [proc.stdout, proc.stderr])
    # Redacted, not dropped: the saved overrides still say which keys were given.
    overrides = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
    assert "+preflight.throughput.api_key=<redacted>" in overrides
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").preflight.throughput.auth.hf_token == "<redacted>"


@pytest.mark.parametrize("override", ["+logger.api_key", "logger.api_key"])
def test_an_unknown_secret_key_fails_in_one_line_without_its_value(tmp_path, override):
    """The schema has no logger.api_key: `+logger.api_key=XYZ` stops at start (one line, exit 2, no store),
    and neither that line nor any file of the run folder holds XYZ."""
    run_dir, store = tmp_path / "run", tmp_path / "store"
    proc = _run_main(["tasks=smoke", "logger=wandb", f"hydra.run.dir={run_dir}", f"store_dir={store}",
                      f"{override}={OVERRIDE_SECRET}"], spawn=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "logger.api_key" in lines[0]
    assert not store.exists()
    _assert_nowhere(OVERRIDE_SECRET, [tmp_path], [proc.stdout, proc.stderr])


def test_a_sweep_writes_secret_overrides_nowhere(tmp_path):
    """multirun.yaml, every job's .hydra/ and the sweep tables of a `-m` sweep."""
    sweep_dir = tmp_path / "sweep"
    proc = _run_main(["-m", "tasks=smoke", "experiment.stop_after=build", "logger=none", "seed=0,1",
                      f"hydra.sweep.dir={sweep_dir}", f"store_dir={tmp_path / 'store'}",
                      f"+preflight.throughput.api_key={OVERRIDE_SECRET}"], spawn=False)  # a section that takes any key
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep_dir / "multirun.yaml").is_file() and (sweep_dir / "sweep_results.csv").is_file()
    assert len(list(sweep_dir.glob("*/.hydra/overrides.yaml"))) == 2
    _assert_nowhere(OVERRIDE_SECRET, [tmp_path], [proc.stdout, proc.stderr])
    assert "preflight.throughput.api_key" in (sweep_dir / "sweep_results.csv").read_text()  # the key, not its value
    assert "+preflight.throughput.api_key=<redacted>" in (sweep_dir / "multirun.yaml").read_text()


def test_saved_yaml_is_rewritten_only_when_it_holds_a_secret(tmp_path):
    from introspection.outputs.run_folder import _redact_yaml

    path = tmp_path / "hydra.yaml"
    path.write_text("hydra:\n  overrides:\n    task:\n    - +experiment.options.api_key=abcdefgh\n    - seed=1\n"
                    "  job:\n    override_dirname: +experiment.options.api_key=abcdefgh,seed=1\n")
    _redact_yaml(path, {"abcdefgh"})
    saved = OmegaConf.load(path)
    assert list(saved.hydra.overrides.task) == ["+experiment.options.api_key=<redacted>", "seed=1"]
    assert saved.hydra.job.override_dirname == "+experiment.options.api_key=<redacted>,seed=1"
    clean = tmp_path / "config.yaml"
    text = "# Hydra's own layout\nseed: 1\nrun: ${now:%H}\n"
    clean.write_text(text)
    _redact_yaml(clean, {"abcdefgh"})
    assert clean.read_text() == text  # nothing secret: Hydra's file stays byte for byte
