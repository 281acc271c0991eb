"""Bad input: each case fails with one line that names the bad value and the fix, and leaves the store
consistent; through the command line it is `error: <line>` on stderr and exit code 2, no traceback.

Most cases call the function that checks the input (no model is loaded); the command-line cases run the entry
point up to the failing check: in the test's process (tests/helpers run_main), or, where the case needs it (an
environment read at import, a library patched first), as `python -m introspection.main` (seconds each).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from introspection.cli import check_overrides
from introspection.core.config import ModelEntry
from introspection.core.errors import WorkerError, one_line_errors, reported, worker_failure
from introspection.core.store import Store
from tests.helpers import compose_cfg, run_main
from tests.helpers.checks import assert_one_line, assert_store_consistent

ROOT = Path(__file__).resolve().parents[1]


def raised(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return str(info.value)


def main_fails(tmp_path: Path, args: list[str], *parts: str, env: dict | None = None, code: str | None = None) -> str:
    """Run the entry point; assert exit 2 and exactly one stderr line, `error: ...` holding every part.

    In this process (tests/helpers run_main) unless the case needs a process of its own: an environment read when
    the libraries load (`env`), or a library patched before anything imports it (`code`)."""
    store = tmp_path / "store"
    argv = ["tasks=smoke", "logger=none", f"store_dir={store}", f"hydra.run.dir={tmp_path / 'run'}", *args]
    if env is None and code is None:
        proc = run_main(argv, check=False)
    else:
        # `code` patches the library first; then the entry point runs as `python -m` runs it.
        launch = ["-c", f"{code}\nimport runpy, sys\nsys.argv[1:] = {argv!r}\n"
                        "runpy.run_module('introspection.main', run_name='__main__', alter_sys=True)"] \
            if code else ["-m", "introspection.main", *argv]
        proc = subprocess.run([sys.executable, *launch], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert_one_line(lines[0], *parts)
    if store.exists():
        assert_store_consistent(store)
    return lines[0]


# --- through the command line -------------------------------------------------------------------
def test_unknown_model_pair(tmp_path):
    main_fails(tmp_path, ["model=nope"], "unknown model 'nope'", "valid: ", "demo")


def test_unknown_task_name(tmp_path):
    main_fails(tmp_path, ["tasks.train_tasks=[colours_long]"], "unknown task 'colours_long'", "tasks.train_tasks",
               "valid: ", "colors_long")


def test_unknown_experiment_name(tmp_path):
    main_fails(tmp_path, ["experiment.name=cross"], "unknown experiment.name 'cross'", "valid: ", "cross_prediction")


def test_wrongly_typed_value(tmp_path):
    main_fails(tmp_path, ["finetune.epochs=three"], "finetune.epochs", "three")


def test_learning_rate_that_is_not_positive(tmp_path):
    main_fails(tmp_path, ["finetune.learning_rate_by_model.smollm2_135m=0"],
               "finetune.learning_rate_by_model.smollm2_135m=0.0", "valid: a number > 0")


def test_model_folder_that_does_not_exist(tmp_path):
    missing = tmp_path / "no_such_model"
    main_fails(tmp_path, ["model.m1.source=local", f"model.m1.path={missing}"], str(missing), "model.m1.path",
               "does not exist", "give a folder with config.json")


def test_hub_model_while_offline(tmp_path):
    main_fails(tmp_path, ["model.m1.source=hub", "model.m1.path=nobody/no-such-model"], "'nobody/no-such-model'",
               "model.m1.path", "HF_HUB_OFFLINE=1", "download it first", "or unset HF_HUB_OFFLINE",
               env={"HF_HOME": str(tmp_path / "hf")})


def test_hub_dataset_while_offline(tmp_path):
    main_fails(tmp_path, ["tasks.train_tasks=[mmlu_non_cot]", "experiment.stop_after=build"], "'mmlu_non_cot'",
               "cais/mmlu", "offline", "put train_mmlu.jsonl in tasks.data_dir",
               env={"HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1"})


def test_malformed_jsonl_named_with_file_and_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train_colors.jsonl").write_text('{"string": "red blue"}\n{"string": "green\n')
    main_fails(tmp_path, [f"tasks.data_dir={data}", "experiment.stop_after=build"],
               f"{data / 'train_colors.jsonl'} line 2", "not valid JSON")


def test_store_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    main_fails(tmp_path, [f"store_dir={blocker / 'store'}"], str(blocker / "store"), "store_dir")


DISK_FULL = """
import errno, os
import introspection.core.store as store
real = store.write_text_atomic
def full(path, text):
    real(path, text[: len(text) // 2])  # half the file lands, then the disk is full
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
store.write_text_atomic = full
"""


def test_disk_full_while_writing_an_artifact(tmp_path):
    line = main_fails(tmp_path, ["experiment.stop_after=build"], "cannot write artifact items/", "No space left",
                      str(tmp_path / "store"), "free space there or set store_dir", code=DISK_FULL)
    assert "Traceback" not in line
    assert not list((tmp_path / "store" / "artifacts").glob("items/*"))  # nothing half-written is visible


# --- task data --------------------------------------------------------------------------------
def test_malformed_jsonl_row_types(tmp_path):
    from introspection.paper.tasks import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_text('{"string": "a"}\n\n{"string": 5}\n')
    assert_one_line(raised(ValueError, read_jsonl, path), f"{path} line 3", "'string' must be a str", "5")
    path.write_text('["not", "an", "object"]\n')
    assert_one_line(raised(ValueError, read_jsonl, path), f"{path} line 1", "expected a JSON object, got list")


def test_unreadable_data_file(tmp_path):
    from introspection.paper.tasks import read_jsonl

    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"string": "caf\xe9"}\n'.encode("latin-1"))
    assert_one_line(raised(ValueError, read_jsonl, path), f"cannot read task file {path}", "utf-8")


def test_data_dir_that_is_not_a_folder(tmp_path):
    from introspection.paper.tasks import get_task, load_items

    missing = tmp_path / "nowhere"
    assert_one_line(raised(ValueError, load_items, get_task("colors_long"), "train", 4, 0, str(missing)),
                    f"tasks.data_dir '{missing}' is not a folder")


def test_empty_task_file(tmp_path):
    from introspection.stages.items import build_items

    (tmp_path / "train_colors.jsonl").write_text("\n")
    cfg = compose_cfg(["tasks=smoke", f"tasks.data_dir={tmp_path}"])
    store = Store(tmp_path / "store")
    assert_one_line(raised(ValueError, build_items, cfg.tasks, store), "task 'colors_long' has no train items",
                    str(tmp_path / "train_colors.jsonl"), "remove it from tasks.train_tasks")
    cfg = compose_cfg(["tasks=smoke", "tasks.n_test_items=0"])
    assert_one_line(raised(ValueError, build_items, cfg.tasks, store), "task 'animals_long' has no val items",
                    "tasks.n_test_items=0")
    assert_store_consistent(store.root)


def test_task_set_without_test_tasks(tmp_path):
    from introspection.stages.items import build_items

    cfg = compose_cfg(["tasks=smoke", "tasks.test_tasks=[]"])
    assert_one_line(raised(ValueError, build_items, cfg.tasks, Store(tmp_path)), "task set 'smoke'",
                    "needs at least one train task and one test task", "tasks.test_tasks=[]")


def test_unknown_property(tmp_path):
    from introspection.stages.items import build_items

    cfg = compose_cfg(["tasks=smoke", "tasks.properties.colors_long=[first_letter]"])
    assert_one_line(raised(ValueError, build_items, cfg.tasks, Store(tmp_path)), "unknown property 'first_letter'",
                    "tasks.properties.colors_long", "valid: ", "first_character")


def test_property_that_does_not_apply_to_the_task(tmp_path):
    from introspection.stages.items import build_items

    cfg = compose_cfg(["tasks=smoke", "tasks.properties.colors_long=[among_a_or_c]"])
    assert_one_line(raised(ValueError, build_items, cfg.tasks, Store(tmp_path)), "property 'among_a_or_c'",
                    "task 'colors_long'", "valid: ", "first_character")


def test_number_of_items_of_the_wrong_type():
    from introspection.paper.tasks import get_task, load_items

    for bad in (-1, "5", 2.5):
        assert_one_line(raised(ValueError, load_items, get_task("colors_long"), "train", bad, 0),
                        "task 'colors_long'", "int >= 0", repr(bad))
    assert_one_line(check_overrides(["tasks.n_train_items=many"]), "tasks.n_train_items", "many")


# --- models and adapters ----------------------------------------------------------------------
def test_model_folder_without_chat_template(tiny_model_dir, tmp_path):
    import shutil

    from introspection.core.errors import ModelResolveError
    from introspection.weights.resolve import resolve_model

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    entry = ModelEntry(name="tiny", source="local", path=str(folder))
    assert_one_line(raised(ModelResolveError, resolve_model, entry, tmp_path, where="model.m2"),
                    "model tiny", "has no chat template", "set model.m2.chat_template=gemma|chatml|PATH")
    entry.chat_template = "chatml"  # the fix works
    assert resolve_model(entry, tmp_path, where="model.m2").chat_template is not None


def test_chat_template_that_is_neither_named_nor_a_file(tiny_model_dir, tmp_path):
    from introspection.core.errors import ModelResolveError
    from introspection.weights.resolve import resolve_model

    entry = ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), chat_template="llama3.jinja")
    assert_one_line(raised(ModelResolveError, resolve_model, entry, tmp_path, where="model.m1"), "'llama3.jinja'",
                    "model.m1.chat_template", "gemma", "chatml", "existing .jinja file")


def test_unknown_model_source_and_embedded_key(tmp_path):
    from introspection.core.errors import ModelResolveError
    from introspection.weights.resolve import resolve_model

    entry = ModelEntry(name="x", source="s3", path="bucket/model")
    assert_one_line(raised(ModelResolveError, resolve_model, entry, tmp_path, where="model.m1"),
                    "unknown model source 's3'", "model.m1.source", "valid: hub, local, embedded")
    entry = ModelEntry(name="x", source="embedded", path="smollm3")
    assert_one_line(raised(ModelResolveError, resolve_model, entry, tmp_path), "unknown embedded model 'smollm3'",
                    "valid: ", "smollm2_135m_instruct")


def test_two_models_with_one_name(tiny_model_dir, tmp_path):
    from introspection.pipeline.executor import LocalExecutor
    from introspection.pipeline.steps import RunContext, resolve_models

    cfg = compose_cfg([f"model.{s}.{k}={v}" for s in ("m1", "m2")
                       for k, v in (("source", "local"), ("path", tiny_model_dir), ("name", "tiny"))])
    ctx = RunContext(cfg, Store(tmp_path), tmp_path, LocalExecutor())
    assert_one_line(raised(ValueError, resolve_models, ctx), "model.m1.name and model.m2.name", "'tiny'",
                    "distinct names")


def test_adapter_rank_beyond_the_engine_limit(tmp_path):
    from introspection.inference.lora import AdapterError, adapter_rank, vllm_max_lora_rank

    assert vllm_max_lora_rank(4) == 8 and vllm_max_lora_rank(512) == 512
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 16, "rank_pattern": {"q_proj": 1024}}))
    rank = adapter_rank(tmp_path)
    assert_one_line(raised(AdapterError, vllm_max_lora_rank, rank), "LoRA rank 1024", "largest max_lora_rank 512",
                    "finetune.lora.r<=512", "inference=hf")
    (tmp_path / "adapter_config.json").unlink()
    assert_one_line(raised(AdapterError, adapter_rank, tmp_path), str(tmp_path), "no adapter_config.json")


def test_unknown_inference_backend_and_finetune_method():
    from omegaconf import OmegaConf

    from introspection.core.config import FinetuneConfig, InferenceConfig
    from introspection.finetune.sft_settings import check_config
    from introspection.inference import make_backend

    cfg = OmegaConf.structured(InferenceConfig(name="x"))
    assert_one_line(raised(ValueError, make_backend, "tgi", None, cfg, None), "unknown inference backend 'tgi'",
                    "inference.backend", "valid: ", "vllm", "hf")
    assert_one_line(raised(ValueError, check_config, OmegaConf.structured(FinetuneConfig(name="x", method="dora"))),
                    "finetune.method='dora'", "lora, qlora, full")


# --- answers ----------------------------------------------------------------------------------
def test_all_non_compliant_answers(tmp_path):
    from introspection.core.types import Answer
    from introspection.stages.items import build_items
    from introspection.stages.model_ref import ModelRef
    from introspection.stages.rows import prepare_rows

    # Strict compliance: under the authors' rules (the default) any text has some values, e.g.
    # starts_with_vowel of "" is false.
    cfg = compose_cfg(["tasks=smoke", "tasks.n_train_items=3", "tasks.n_test_items=2", "tasks.compliance=strict"])
    store = Store(tmp_path)
    plan = build_items(cfg.tasks, store)
    target = ModelRef("tiny_b[self]", {}, {"fingerprint": "0"})
    # Nothing a property can be read from: empty, only punctuation, or no answer at all (samples disagreed).
    texts = ["", "?!", None]
    answers = {f"obj|{it.item_id}": Answer(f"obj|{it.item_id}", texts[i % 3]) for i, it in enumerate(plan.train_items)}
    message = raised(ValueError, prepare_rows, store, plan, target, target, answers, cfg.tasks, cfg.finetune)
    assert_one_line(message, "no usable finetuning rows", "tiny_b[self]", "non-compliant", "inference.max_tokens")
    assert not (tmp_path / "artifacts" / "sft_rows").exists()
    assert_store_consistent(store.root)


# --- a full disk in the store -----------------------------------------------------------------
@pytest.mark.parametrize("when", ["build", "manifest"])
def test_disk_full_leaves_the_store_consistent(tmp_path, monkeypatch, when):
    import introspection.core.store as store_module

    store = Store(tmp_path)

    def build(folder: Path):
        (folder / "answers.jsonl").write_text('{"request_id": "r0"}\n{"requ')  # half written
        if when == "build":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "answers.jsonl"))

    if when == "manifest":
        def full(path, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr(store_module, "write_text_atomic", full)
    message = raised(OSError, store.get_or_build, "answers", "k" * 64, build)
    assert_one_line(message, "cannot write artifact answers/kkkkkkkkkkkk", str(tmp_path), "No space left on device",
                    "free space there or set store_dir to another disk")
    assert store.get("answers", "k" * 64) is None
    assert_store_consistent(tmp_path)
    monkeypatch.undo()
    assert store.get_or_build("answers", "k" * 64, lambda f: (f / "answers.jsonl").write_text("{}\n") and None)


def test_disk_full_in_a_plain_write_names_the_file(tmp_path, monkeypatch):
    """Batches of answers in partial/ and run outputs are written by write_text_atomic: a write that fails
    names the file it was writing, and no temporary file is left."""
    import introspection.core.store as store_module
    from introspection.core.errors import one_line

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    target = tmp_path / "partial" / "batch-00001.jsonl"
    with pytest.raises(OSError) as info:
        store_module.write_text_atomic(target, "{}\n")
    assert_one_line(one_line(info.value), f"No space left on device: {target}", "free space on that disk")
    assert list(target.parent.iterdir()) == []


# --- how an expected failure reaches the user ---------------------------------------------------
@reported  # as introspection.stages.worker's entry points
def bad_rank_worker(payload: dict) -> None:
    from introspection.inference.lora import vllm_max_lora_rank

    vllm_max_lora_rank(payload["rank"])


def test_a_worker_reports_its_error_in_one_line(tmp_path):
    """An expected failure inside a model worker (here the rank check the vLLM backend makes when it loads
    an adapter) reaches the orchestrator as one line naming the worker, the value and the fix."""
    from introspection.stages.worker_runs import run_in_subprocess

    store = Store(tmp_path)
    with pytest.raises(WorkerError) as info:
        run_in_subprocess(store, bad_rank_worker, {"store_root": str(tmp_path), "rank": 1024},
                          "inference for tiny_a[self]")
    assert_one_line(str(info.value), "inference for tiny_a[self]: LoRA rank 1024", "finetune.lora.r<=512")
    assert_store_consistent(tmp_path)  # the error file was read and removed
    # A worker that died without reporting (killed, crashed) keeps the plain RuntimeError.
    assert type(worker_failure(tmp_path, 12345, "inference for x", -9)) is RuntimeError


def test_expected_errors_become_one_line_and_exit_2_others_keep_their_traceback(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @one_line_errors
    def task(exc):
        raise exc

    cases = {ValueError("unknown task 'x' (tasks.train_tasks);\nvalid: a, b"): "unknown task 'x' (tasks.train_tasks); valid: a, b",
             OSError(errno.ENOSPC, "No space left on device", "/out/x"): "No space left on device: /out/x; free space",
             WorkerError("finetuning tiny_a[self]: finetune.method='dora' is not valid"): "finetune.method='dora'"}
    for exc, expected in cases.items():
        with pytest.raises(SystemExit) as info:
            task(exc)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    with pytest.raises(KeyError):  # a bug, not bad input: the traceback stays
        task(KeyError("x"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ValueError):
        task(ValueError("shown with its traceback on request"))



def test_a_failed_materialisation_is_one_line(tmp_path):
    """Embedded models are converted in a spawned process; its failure reaches the caller as one line."""
    from introspection.weights.embedded import _convert_in_worker

    not_a_folder = tmp_path / "not_a_folder"
    not_a_folder.write_text("")
    message = raised(WorkerError, _convert_in_worker, "smollm2_135m_instruct", not_a_folder, tmp_path)
    assert_one_line(message, "materialising embedded model smollm2_135m_instruct", str(not_a_folder))


# --- issue 15: misleading lines and silent data folders ------------------------------------------------
def test_empty_model_folder_says_it_holds_no_model(tmp_path, tiny_model_dir):
    """Not "has no chat template": the folder has no config.json and no weights (at start, and in
    resolve_model for a folder emptied later)."""
    from introspection.core.errors import ModelResolveError
    from introspection.weights.resolve import resolve_model

    empty = tmp_path / "empty_model"
    empty.mkdir()
    line = main_fails(tmp_path, ["model.m1.source=local", f"model.m1.path={empty}"], str(empty), "model.m1.path",
                      "holds no model", "no config.json and no weights")
    assert "chat template" not in line
    assert not (tmp_path / "store").exists()
    entry = ModelEntry(name="tiny", source="local", path=str(empty))
    assert_one_line(raised(ModelResolveError, resolve_model, entry, tmp_path, where="model.m2"), "model.m2.path",
                    "holds no model", "no config.json and no weights")
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    (config_only / "config.json").write_bytes((tiny_model_dir / "config.json").read_bytes())
    message = raised(ModelResolveError, resolve_model, ModelEntry(name="t", source="local", path=str(config_only)),
                     tmp_path, where="model.m1")
    assert_one_line(message, "holds no model", "no weights (*.safetensors or pytorch_model*.bin)")
    assert "config.json and" not in message


@pytest.mark.parametrize("override, parts", [
    ("tasks.n_finetune_per_property=0", ["tasks.n_finetune_per_property=0", "an integer >= 1"]),
    ("tasks.properties.animals_long=[]", ["tasks.properties.animals_long=[]", "lists no property", "first_character"]),
])
def test_settings_that_leave_nothing_to_train_fail_at_start(tmp_path, override, parts):
    """Once reported as "every answer non-compliant; raise inference.max_tokens" after model work."""
    line = main_fails(tmp_path, [override], *parts)
    assert "max_tokens" not in line
    assert not (tmp_path / "store").exists()


def test_data_folder_files_that_match_no_task_are_named(tmp_path, caplog):
    from introspection.checks.start_checks import check_data_dir_files
    from introspection.paper.tasks import get_task
    from introspection.paper.tasks.loading import data_dir_coverage

    data = tmp_path / "data"
    data.mkdir()
    row = json.dumps({"string": "red blue green yellow"}) + "\n"
    (data / "train_colours.jsonl").write_text(row)  # a typo of colors
    (data / "train_colors.jsonl").write_text(row * 20)
    (data / "val_mmlu.jsonl").write_text(row)  # a known task this run does not use: fine
    (data / "notes.txt").write_text("not a task file")
    wanted = [(get_task("colors_long"), "train"), (get_task("animals_long"), "val")]
    assert data_dir_coverage(data, wanted) == (["train_colours.jsonl"], ["val_animals.jsonl"])

    cfg = compose_cfg(["tasks=smoke", f"tasks.data_dir={data}"])
    with caplog.at_level(logging.WARNING, logger="introspection"):
        check_data_dir_files(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert_one_line(warnings[0], str(data), "train_colours.jsonl matches no task", "{train,val}_<task>.jsonl")
    assert_one_line(warnings[1], str(data), "has no val_animals.jsonl", "generator")
    caplog.clear()
    (data / "train_colours.jsonl").unlink()
    (data / "val_animals.jsonl").write_text(row * 20)
    with caplog.at_level(logging.WARNING, logger="introspection"):
        check_data_dir_files(cfg)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_data_folder_warning_through_the_command_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train_colours.jsonl").write_text(json.dumps({"string": "red blue"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "introspection.main", "tasks=smoke", "logger=none",
                           "experiment.stop_after=build", f"tasks.data_dir={data}", f"store_dir={tmp_path / 'store'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "train_colours.jsonl matches no task" in out
    assert "has no train_colors.jsonl, train_animals.jsonl" not in out  # smoke: colors train, animals val
    assert "has no train_colors.jsonl, val_animals.jsonl" in out


def test_a_task_left_without_items_by_its_data_folder_is_an_error(tmp_path):
    """A task with no generator and no hub source finds no file in tasks.data_dir: one line at start."""
    from introspection.checks.start_checks import check_task_data
    from introspection.paper.tasks import TASKS

    no_other_source = next((t for t in TASKS.values() if t.kind != "generated" and t.hf is None), None)
    if no_other_source is None:
        pytest.skip(reason="every known task has a generator or a hub dataset")
    cfg = compose_cfg(["tasks=smoke", f"tasks.data_dir={tmp_path}", f"tasks.train_tasks=[{no_other_source.name}]"])
    assert_one_line(raised(ValueError, check_task_data, cfg), f"task '{no_other_source.name}'", "has no data",
                    f"put train_{no_other_source.source}.jsonl in tasks.data_dir")
