"""Start checks (introspection/checks/start_checks.py): a misconfigured job fails in seconds with one line, before
any model or data work, in a single run (`error: ...`, exit 2) and in every job of a sweep (the line in the
job's error.txt and log, the other jobs go on). Nothing is written to the store.

The command-line cases run the real entry point up to the failing check (in the test's process; as a process of
its own where the case sets environment variables, a few seconds each); the rest call the checks on a composed
config.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from introspection.checks import start_checks
from introspection.core.errors import JOB_ERROR_FILE
from tests.helpers import compose_cfg
from tests.helpers import run_main as run_entry_point
from tests.helpers.checks import assert_one_line

ROOT = Path(__file__).resolve().parents[1]


def run_main(tmp_path: Path, args: list[str], env: dict | None = None, multirun: bool = False):
    """The entry point with a fresh store and run folder; returns (process, the lines holding `error: `).

    Without HYDRA_FULL_ERROR and HF_HUB_OFFLINE and with no CUDA device. In this process (tests/helpers
    run_main) unless `env` adds variables: those a process of its own reads when its libraries load."""
    folders = [f"store_dir={tmp_path / 'store'}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}" if multirun else f"hydra.run.dir={tmp_path / 'run'}"]
    argv = [*(["-m"] if multirun else []), "logger=none", *folders, *args]
    if env is None:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("HYDRA_FULL_ERROR", "HF_HUB_OFFLINE"):
                patch.delenv(name, raising=False)
            patch.setenv("CUDA_VISIBLE_DEVICES", "")
            proc = run_entry_point(argv, check=False)
    else:
        base = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "HF_HUB_OFFLINE")}
        proc = subprocess.run([sys.executable, "-m", "introspection.main", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**base, "CUDA_VISIBLE_DEVICES": "", **env})
    output = proc.stdout + proc.stderr
    return proc, [line for line in output.splitlines() if "error: " in line]


def fails_at_start(tmp_path: Path, args: list[str], *parts: str, env: dict | None = None) -> str:
    """A single run: exit 2, stderr is exactly one `error:` line holding every part, no store was made."""
    started = time.monotonic()
    proc, _ = run_main(tmp_path, args, env)
    elapsed = time.monotonic() - started
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert_one_line(lines[0], *parts)
    assert not (tmp_path / "store").exists(), "a start check failed after the store was touched"
    assert elapsed < 60, f"the start check took {elapsed:.0f} s"
    return lines[0]


# --- the paper's pair on a machine without GPU or weights ------------------------------------------
def test_paper_pair_sweep_job_fails_in_one_line_and_the_single_run_prints_the_same(tmp_path):
    started = time.monotonic()
    proc, lines = run_main(tmp_path, ["model=llama3_70b", "tasks=all"], multirun=True)
    assert time.monotonic() - started < 60
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    written = (tmp_path / "sweep" / "0" / JOB_ERROR_FILE).read_text().strip()
    job_lines = [line for line in lines if written in line]
    assert len(job_lines) == 1 and job_lines[0].endswith(f"error: {written}"), proc.stdout + proc.stderr
    # Besides the job's line, at most the sweep's own summary (its table names the failed jobs).
    assert len(lines) - len(job_lines) <= 1 and all("jobs failed" in line for line in lines if line not in job_lines)
    assert f"error: {written}" in (tmp_path / "sweep" / "0" / "main.log").read_text()  # the job's own log
    assert not (tmp_path / "store").exists()

    single = fails_at_start(tmp_path, ["model=llama3_70b", "tasks=all"])
    assert single == f"error: {written}"


def test_one_bad_job_of_a_sweep_does_not_stop_the_others(tmp_path):
    proc, lines = run_main(tmp_path, ["tasks=smoke", "experiment.stop_after=build", "finetune.batch_size=0,2"],
                           multirun=True)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    job_lines = [line for line in lines if "finetune.batch_size=0 is not valid" in line]
    assert len(job_lines) == 1 and len(lines) - len(job_lines) <= 1, proc.stdout + proc.stderr
    assert_one_line((tmp_path / "sweep" / "0" / JOB_ERROR_FILE).read_text().strip(), "finetune.batch_size=0")
    assert (tmp_path / "sweep" / "1" / "results.json").is_file()
    assert not (tmp_path / "sweep" / "1" / JOB_ERROR_FILE).exists()


def test_full_error_keeps_the_traceback_in_a_sweep(tmp_path):
    proc, _ = run_main(tmp_path, ["+foo=bar"], env={"HYDRA_FULL_ERROR": "1"}, multirun=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "unknown config key 'foo'" in proc.stderr


# --- one test per check, through the entry point ---------------------------------------------------
def test_tensor_parallel_size_must_divide_gpus(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "model.m1.tensor_parallel_size=2"], "model.m1.tensor_parallel_size=2",
                   "model.m1.gpus=1", "must divide gpus", "set model.m1.gpus=2 or model.m1.tensor_parallel_size=1")


def test_a_finetune_that_cannot_fit_the_gpus(tmp_path):
    """The paper's pair under finetune=full: 16 bytes per parameter over 4 GPUs of 80 GB cannot fit (issue 19);
    refused in seconds, before the data is even looked for (no tasks.data_dir given), naming what fits."""
    fails_at_start(tmp_path, ["model=llama3_70b", "tasks=all", "finetune=full", "experiment.stop_after=plan"],
                   "finetune=full of llama3_1_70b (model.m1, 70.6B params)", "GB of GPU memory under multi_gpu=fsdp",
                   "4 GPUs of 80 GB (model.m1.gpus, model.m1.gpu_memory_gb)", "use finetune=lora (fits: ~")


def test_several_gpus_with_one_process_finetuning(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "model.m2.gpus=2"], "model.m2.gpus=2", "finetune.multi_gpu=none",
                   "one process on one GPU", "finetune.multi_gpu=fsdp", "finetune=qlora")


@pytest.mark.skipif(start_checks.importlib.util.find_spec("bitsandbytes") is not None,
                    reason="bitsandbytes is installed here: nothing to refuse")
def test_qlora_without_bitsandbytes(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "finetune=qlora"], "finetune=qlora", "bitsandbytes",
                   "pip install bitsandbytes", "finetune=lora")


def test_hub_model_without_a_cuda_device(tmp_path):
    # tasks=smoke: generated tasks only, so the data is there and the machine check is the one that fails
    fails_at_start(tmp_path, ["model=llama3_70b", "tasks=smoke"], "model.m1", "meta-llama/Llama-3.1-70B-Instruct",
                   "no CUDA device", "model=demo", "model.m1.source=local")


def test_task_data_missing_from_the_data_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    fails_at_start(tmp_path, ["tasks=smoke", f"tasks.data_dir={data}", "tasks.train_tasks=[wikipedia_long]"],
                   "task 'wikipedia_long'", "tasks.train_tasks", str(data / "train_wikipedia.jsonl"), "does not exist",
                   "put train_wikipedia.jsonl in tasks.data_dir")
    fails_at_start(tmp_path, ["tasks=smoke", f"tasks.data_dir={data / 'nowhere'}"], "tasks.data_dir",
                   str(data / "nowhere"), "is not a folder")


def test_release_rows_missing(tmp_path):
    missing = tmp_path / "release"
    fails_at_start(tmp_path, ["tasks=release", f"tasks.release_path={missing}"], "tasks.release_path",
                   str(missing), "does not exist")
    fails_at_start(tmp_path, ["tasks=release"], "tasks=release needs tasks.release_path", "offline",
                   env={"HF_HUB_OFFLINE": "1"})


def test_hub_weights_not_cached_while_offline(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "model.m2.source=hub", "model.m2.path=nobody/no-such-model"],
                   "'nobody/no-such-model'", "model.m2.path", "HF_HUB_OFFLINE=1", "hf download nobody/no-such-model",
                   env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})


def test_mistyped_stop_after_never_starts_the_run(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "experiment.stop_after=buld"], "experiment.stop_after='buld'",
                   "valid: build", "plan", "none")


def test_added_key_that_the_schema_does_not_know(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "+foo=bar"], "unknown config key 'foo'", "+foo=", "valid keys", "model")
    fails_at_start(tmp_path, ["tasks=smoke", "+finetune.lora.rank=8"], "unknown config key 'finetune.lora.rank'",
                   "valid keys under finetune.lora", "r, alpha")


def test_value_out_of_range(tmp_path):
    fails_at_start(tmp_path, ["tasks=smoke", "inference.n_samples=0"], "inference.n_samples=0", "integer >= 1")


# --- the checks on a composed config ---------------------------------------------------------------
def raised(fn, *args) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args)
    return str(info.value)


BAD_VALUES = {  # key -> a value outside its range; every key of start_checks.RANGES
    "seed": -1, "tasks.n_train_items": 0, "tasks.n_test_items": 0, "tasks.n_finetune_per_property": 0,
    "tasks.seed": 2**32, "finetune.lora.r": 0, "finetune.lora.alpha": 0, "finetune.lora.dropout": 1.0,
    "finetune.epochs": 0, "finetune.learning_rate": -1e-4, "finetune.batch_size": 0,
    "finetune.effective_batch_size": 0, "finetune.gradient_accumulation_steps": 0, "finetune.max_length": 0,
    "finetune.warmup_ratio": 1.0, "finetune.seed": -3, "finetune.max_examples": 0,
    "finetune.object_anchor_ratio": -0.5, "inference.batch_size": 0, "inference.gpu_batch_size": 0,
    "inference.temperature": -0.1, "inference.top_p": 0.0, "inference.max_tokens": 0,
    "inference.max_tokens_hypothetical": 0, "inference.n_samples": 0, "inference.top_logprobs": -1,
    "inference.seed": -1, "inference.gpu_memory_utilization": 1.5, "inference.cpu_kv_cache_gib": 0,
    "preflight.gpus": 0, "preflight.chars_per_token": 0,
    "inference.server_concurrency": 0, "inference.server_timeout_s": 0, "inference.server_max_retries": -1,
    **{f"model.{s}.{k}": 0 for s in ("m1", "m2") for k in ("tensor_parallel_size", "max_model_len", "gpus", "params_b",
                                                                   "gpu_memory_gb")},
}


def test_every_range_has_a_bad_value_here():
    assert set(BAD_VALUES) == set(start_checks.RANGES)


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_each_numeric_range(key):
    cfg = compose_cfg(["tasks=smoke"])
    if OmegaConf.select(cfg, key, default="absent") == "absent":
        pytest.skip(reason=f"{key} is not in this version of the schema")
    start_checks.check_ranges(cfg)  # the shipped values are valid
    OmegaConf.update(cfg, key, BAD_VALUES[key])
    assert_one_line(raised(start_checks.check_ranges, cfg), f"{key}=", "is not valid; valid: ")


def test_optional_values_may_be_null():
    cfg = compose_cfg(["tasks=smoke", "finetune.max_examples=null", "model.m1.params_b=null"])
    start_checks.check_ranges(cfg)
    OmegaConf.update(cfg, "finetune.learning_rate_by_model.smollm2_135m", 0.0)
    assert_one_line(raised(start_checks.check_ranges, cfg), "finetune.learning_rate_by_model.smollm2_135m=0.0")


def test_an_empty_property_list():
    cfg = compose_cfg(["tasks=smoke", "tasks.properties.animals_long=[]"])
    assert_one_line(raised(start_checks.check_property_lists, cfg), "tasks.properties.animals_long=[]",
                    "valid: ", "first_character")


def test_tensor_parallel_rule():
    cfg = compose_cfg(["model=llama3_70b", "tasks=smoke"])
    start_checks.check_tensor_parallel(cfg)  # 4 of 4
    for gpus, tp, fix in ((8, 3, "model.m1.tensor_parallel_size=2"), (2, 4, "model.m1.tensor_parallel_size=2")):
        OmegaConf.update(cfg, "model.m1.gpus", gpus)
        OmegaConf.update(cfg, "model.m1.tensor_parallel_size", tp)
        assert_one_line(raised(start_checks.check_tensor_parallel, cfg), f"tensor_parallel_size={tp}",
                        f"model.m1.gpus={gpus}", fix)
    OmegaConf.update(cfg, "model.m1.gpus", 8)
    OmegaConf.update(cfg, "model.m1.tensor_parallel_size", 4)  # vLLM uses 4 of 8: allowed
    start_checks.check_tensor_parallel(cfg)


def test_multi_gpu_strategy_rule():
    cfg = compose_cfg(["tasks=smoke", "model.m1.gpus=4"])
    assert_one_line(raised(start_checks.check_multi_gpu_strategy, cfg), "model.m1.gpus=4", "finetune.multi_gpu=fsdp")
    for fix in ("finetune.multi_gpu=fsdp", "finetune=qlora"):
        start_checks.check_multi_gpu_strategy(compose_cfg(["tasks=smoke", "model.m1.gpus=4", fix]))


def test_qlora_needs_cuda_even_with_bitsandbytes(monkeypatch):
    cfg = compose_cfg(["tasks=smoke", "finetune=qlora"])
    real = start_checks.importlib.util.find_spec
    monkeypatch.setattr(start_checks.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "bitsandbytes" else real(name, *a))
    monkeypatch.setattr(start_checks, "cuda_device_count", lambda: 0)
    assert_one_line(raised(start_checks.check_qlora, cfg), "finetune=qlora needs a CUDA GPU", "finetune=lora")
    monkeypatch.setattr(start_checks, "cuda_device_count", lambda: 1)
    start_checks.check_qlora(cfg)


def test_hub_models_need_cuda_unless_declared_small(monkeypatch):
    cfg = compose_cfg(["model=llama3_8b", "tasks=smoke"])
    monkeypatch.setattr(start_checks, "cuda_device_count", lambda: 0)
    assert_one_line(raised(start_checks.check_cuda_for_hub_models, cfg), "model.m1", "no CUDA device")
    for slot in ("m1", "m2"):
        OmegaConf.update(cfg, f"model.{slot}.params_b", 0.5)
    start_checks.check_cuda_for_hub_models(cfg)  # small hub models may run on a CPU
    monkeypatch.setattr(start_checks, "cuda_device_count", lambda: 1)
    start_checks.check_cuda_for_hub_models(compose_cfg(["model=llama3_8b", "tasks=smoke"]))
    start_checks.check_cuda_for_hub_models(compose_cfg(["tasks=smoke"]))  # embedded models: no GPU needed


def cache_file(cache: Path, repo: str, name: str, text: str = "{}") -> None:
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text("abc123")
    path = folder / "snapshots" / "abc123" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_offline_weights_read_the_cache_only(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = "org/model"
    assert not start_checks.hub_weights_cached(repo, None)
    cache_file(tmp_path, repo, "config.json")
    assert not start_checks.hub_weights_cached(repo, None)  # config without weights
    cache_file(tmp_path, repo, "model.safetensors.index.json",
               '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    cache_file(tmp_path, repo, "model-00001-of-00002.safetensors")
    assert not start_checks.hub_weights_cached(repo, None)  # one shard missing
    cache_file(tmp_path, repo, "model-00002-of-00002.safetensors")
    assert start_checks.hub_weights_cached(repo, None)

    cfg = compose_cfg(["tasks=smoke", "model.m1.source=hub", f"model.m1.path={repo}"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start_checks.check_offline_weights(cfg)
    OmegaConf.update(cfg, "model.m1.path", "org/other")
    assert_one_line(raised(start_checks.check_offline_weights, cfg), "'org/other'", "model.m1.path")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    start_checks.check_offline_weights(cfg)  # online: the hub has it or says so itself


def test_hub_dataset_offline_is_found_in_either_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cfg = compose_cfg(["tasks=smoke", "tasks.train_tasks=[mmlu_non_cot]"])
    assert_one_line(raised(start_checks.check_task_data, cfg), "task 'mmlu_non_cot'", "cais/mmlu", "not cached",
                    "put train_mmlu.jsonl in tasks.data_dir")
    (tmp_path / "datasets" / "cais___mmlu").mkdir(parents=True)
    start_checks.check_task_data(cfg)
    (tmp_path / "datasets" / "cais___mmlu").rmdir()
    (tmp_path / "hub" / "datasets--cais--mmlu").mkdir(parents=True)
    start_checks.check_task_data(cfg)


def test_dry_runs_skip_the_machine_checks(monkeypatch):
    """stop_after=build|plan loads no model: a plan for a GPU cluster can be made on a laptop."""
    monkeypatch.setattr(start_checks, "cuda_device_count", lambda: 0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nor do they need the weights in the cache
    for stop in ("build", "plan"):
        start_checks.run_start_checks(compose_cfg(["model=llama3_70b", "tasks=smoke", f"experiment.stop_after={stop}"]))
    monkeypatch.delenv("HF_HUB_OFFLINE")  # (CI sets it; offline, the missing weights would be named first)
    with pytest.raises(ValueError, match="no CUDA device"):
        start_checks.run_start_checks(compose_cfg(["model=llama3_70b", "tasks=smoke"]))


def test_the_demo_passes_every_check():
    start_checks.run_start_checks(compose_cfg([]))
    start_checks.run_start_checks(compose_cfg(["tasks=smoke", "+experiment.options.extra=1"]))  # dict settings take any key


def test_chat_template_file_with_a_jinja_syntax_error(tmp_path):
    template = tmp_path / "broken.jinja"
    template.write_text("{% for m in messages %}{{ m.content }\n")
    fails_at_start(tmp_path, ["tasks=smoke", f"model.m2.chat_template={template}"], str(template),
                   "model.m2.chat_template", "is not valid Jinja", "line 1")
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    start_checks.check_model_files(compose_cfg(["tasks=smoke", f"model.m2.chat_template={template}"]))


def test_local_model_folder_is_checked_at_start(tmp_path, tiny_model_dir):
    cfg = compose_cfg(["tasks=smoke", "model.m1.source=local", f"model.m1.path={tmp_path / 'none'}"])
    assert_one_line(raised(start_checks.check_model_files, cfg), str(tmp_path / "none"), "model.m1.path",
                    "does not exist")
    OmegaConf.update(cfg, "model.m1.path", str(tiny_model_dir))
    start_checks.check_model_files(cfg)


def test_lora_rank_above_the_hidden_size(tiny_model_dir):
    cfg = compose_cfg(["tasks=smoke", "model.m1.source=local", f"model.m1.path={tiny_model_dir}", "finetune.lora.r=129"])
    assert_one_line(raised(start_checks.check_lora_rank, cfg), "finetune.lora.r=129", "hidden size 128",
                    "model.m1", "valid: 1 to 128")
    OmegaConf.update(cfg, "finetune.lora.r", 128)
    start_checks.check_lora_rank(cfg)
    OmegaConf.update(cfg, "finetune.lora.r", 1_000_000)
    OmegaConf.update(cfg, "finetune.method", "full")  # no adapter: no rank
    start_checks.check_lora_rank(cfg)


def test_lora_rank_of_an_embedded_model_is_judged_before_it_is_converted(tmp_path):
    """A fresh store holds no converted model: the rank is still refused at start, not after a minute of
    converting (the demo pair: SmolLM2 576, Gemma-3 640)."""
    cfg = compose_cfg([f"store_dir={tmp_path / 'empty-store'}", "finetune.lora.r=600"])
    assert_one_line(raised(start_checks.check_lora_rank, cfg), "finetune.lora.r=600", "hidden size 576",
                    "model.m1", "valid: 1 to 576")
    OmegaConf.update(cfg, "model.m1", cfg.model.m2)  # both sides Gemma-3: 600 fits 640
    start_checks.check_lora_rank(cfg)
    assert not (tmp_path / "empty-store").exists()  # judged without converting anything


def test_launcher_options_are_checked_before_hydra_starts():
    from introspection.cli import check_overrides

    assert_one_line(check_overrides(["hydra/launcher=nope"]), "unknown hydra/launcher 'nope'",
                    "command line: hydra/launcher=nope", "valid: ", "slurm", "submitit_slurm")
    assert_one_line(check_overrides(["hydra/launcher=slurm", "hydra.launcher.partitionn=gpu"]), "'partitionn'",
                    "hydra.launcher.partitionn")
    assert check_overrides(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "model=llama3_70b"]) is None


def test_run_folder_that_cannot_be_created(tmp_path, monkeypatch):
    from introspection import cli

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_one_line(cli.check_output_folders([f"hydra.run.dir={blocker / 'run'}"]), f"hydra.run.dir={blocker / 'run'}",
                    f"{blocker} is a file")
    assert_one_line(cli.check_output_folders([f"hydra.sweep.dir={blocker / 'a' / 'b'}"]), "hydra.sweep.dir", str(blocker))
    assert cli.check_output_folders([f"hydra.run.dir={tmp_path / 'new' / 'run'}"]) is None
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # as a user without write permission there
    assert_one_line(cli.check_output_folders([f"hydra.run.dir={tmp_path / 'new' / 'run'}"]), f"{tmp_path} is not writable")


def test_wandb_online_without_a_reachable_server(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)  # credentials: logger.mode=auto means online
    cfg = compose_cfg(["tasks=smoke", "logger=wandb"])
    started = time.monotonic()
    assert_one_line(raised(start_checks.check_wandb_reachable, cfg), "http://127.0.0.1:9", "cannot be reached",
                    "WANDB_MODE=offline", "logger=none")
    assert time.monotonic() - started <= start_checks.WANDB_TIMEOUT_S + 1
    OmegaConf.update(cfg, "logger.mode", "online")
    assert_one_line(raised(start_checks.check_wandb_reachable, cfg), "logger.mode=offline")
    monkeypatch.setenv("WANDB_MODE", "offline")  # auto follows WANDB_MODE: nothing to reach
    OmegaConf.update(cfg, "logger.mode", "auto")
    start_checks.check_wandb_reachable(cfg)
