"""Finetuning: SFT row construction, the loss mask, and short real training runs on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from introspection.core.config import FinetuneConfig, LoraSettings
from introspection.finetune.data import read_rows, rows_hash, sft_rows, write_rows


def _example(text: str, prop: str, answer: str, item_id: str | None = None) -> dict:
    question = f"Suppose you were asked to continue '{text}'. What would be the {prop} of your answer?"
    return {
        "prompt": [{"role": "system", "content": ""}, {"role": "user", "content": question}],
        "completion": answer,
        "item_id": item_id or text,
        "task": "animals",
        "property": prop,
    }


def _yes_rows(n: int = 16) -> list[dict]:
    # A constant answer format: every question is answered "yes" (then end-of-turn).
    return sft_rows([_example(f"word {i}", "is_even", "yes") for i in range(n)], max_examples=None)


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _generate(model, tokenizer, messages: list[dict]) -> str:
    import torch

    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=12, do_sample=False)
    return tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)


def _answer_token_probability(model, tokenizer, messages: list[dict], answer: str) -> float:
    """Mean probability the model gives each token of `answer` after the generation prompt (teacher-forced)."""
    import torch

    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    prompt_ids = prompt["input_ids"][0]
    answer_ids = torch.tensor(tokenizer.encode(answer, add_special_tokens=False))
    ids = torch.cat([prompt_ids, answer_ids]).unsqueeze(0)
    with torch.no_grad():
        probs = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].softmax(-1)
    return float(probs[torch.arange(len(answer_ids)), answer_ids].mean())


# --- rows ------------------------------------------------------------------------------------------


def test_sft_rows_format_and_metadata():
    rows = sft_rows([_example("cat dog", "first_character", "c")], max_examples=None)
    assert rows == [{
        "item_id": "cat dog",
        "task": "animals",
        "property": "first_character",
        "prompt": _example("cat dog", "first_character", "c")["prompt"],
        "completion": [{"role": "assistant", "content": "c"}],
    }]


def test_sft_rows_dedups_on_prompt_and_completion_not_string_and_answer():
    a = _example("apple", "first_character", "a")
    b = _example("apple", "starts_with_vowel", "a")  # same string, same answer, different question
    rows = sft_rows([a, dict(a), b, dict(b, completion="b")], max_examples=None)
    keys = sorted((r["property"], r["completion"][0]["content"]) for r in rows)
    # The original (key = string + answer) would have kept only one of the first three.
    assert keys == [("first_character", "a"), ("starts_with_vowel", "a"), ("starts_with_vowel", "b")]


def test_sft_rows_shuffle_is_seeded_and_caps_are_nested():
    examples = [_example(f"w{i}", "first_character", str(i)) for i in range(50)]
    ids = lambda rows: [r["item_id"] for r in rows]  # noqa: E731
    full = sft_rows(examples, max_examples=None, seed=42)
    assert ids(full) == ids(sft_rows(examples, max_examples=None, seed=42))
    assert ids(full) != [e["item_id"] for e in examples]  # shuffled
    assert ids(full) != ids(sft_rows(examples, max_examples=None, seed=7))
    assert sorted(ids(full)) == sorted(e["item_id"] for e in examples)
    assert ids(sft_rows(examples, max_examples=10)) == ids(full)[:10]  # smaller sizes are subsets
    assert len(sft_rows(examples, max_examples=500)) == 50


def test_sft_rows_rejects_bad_input():
    with pytest.raises(ValueError, match="max_examples"):
        sft_rows([_example("a", "p", "x")], max_examples=0)
    with pytest.raises(ValueError, match="completion"):
        sft_rows([_example("a", "p", "")], max_examples=None)
    with pytest.raises(ValueError, match="prompt"):
        sft_rows([dict(_example("a", "p", "x"), prompt="not messages")], max_examples=None)


def test_write_read_rows_roundtrip(tmp_path):
    rows = sft_rows([_example("ünïcode", "first_character", "ü"), _example("b", "p", "x")], max_examples=None)
    path = write_rows(rows, tmp_path / "sub" / "rows.jsonl")
    assert read_rows(path) == rows
    assert rows_hash(read_rows(path)) == rows_hash(rows)
    assert [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]  # no temp file left


# --- loss mask -------------------------------------------------------------------------------------


def test_label_mask_covers_answer_and_end_of_turn_only(tiny_model_dir):
    from introspection.finetune.label_mask import label_mask_report

    tokenizer = _tokenizer(tiny_model_dir)
    row = sft_rows([_example("cat dog", "third_word", "horse")], max_examples=None)[0]
    report = label_mask_report(tokenizer, row, max_length=512)

    trained = report["trained"]
    first = trained.index(True)
    assert all(trained[first:]) and not any(trained[:first])  # one contiguous block at the end
    # The untrained part is exactly the prompt as inference renders it (generation prompt included).
    rendered_prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    assert "".join(report["tokens"][:first]) == rendered_prompt
    # The trained part is the answer and the end-of-turn token; ChatML's newline after <|im_end|> rides along.
    assert report["trained_text"] in ("horse<|im_end|>", "horse<|im_end|>\n")
    assert report["tokens"][first:first + 6] == list("horse") + ["<|im_end|>"]


def test_label_mask_report_matches_the_trainer_dataset(tiny_model_dir, tmp_path):
    from introspection.finetune.label_mask import label_mask_report
    from introspection.finetune.trainer import build_trainer

    tokenizer = _tokenizer(tiny_model_dir)
    rows = _yes_rows(4)
    cfg = FinetuneConfig(name="t", max_length=512)
    trainer, _ = build_trainer(str(tiny_model_dir), tokenizer, rows, cfg, tmp_path / "work", progress=False)
    for index, row in enumerate(rows):
        report = label_mask_report(tokenizer, row, max_length=512)
        assert report["input_ids"] == list(trainer.train_dataset[index]["input_ids"])
        assert report["labels"] == list(trainer.train_dataset[index]["labels"])


def test_label_mask_prompt_longer_than_max_length_is_an_error(tiny_model_dir):
    from introspection.finetune.label_mask import label_mask_report

    row = _yes_rows(1)[0]
    with pytest.raises(ValueError, match="max_length=8"):
        label_mask_report(_tokenizer(tiny_model_dir), row, max_length=8)


def test_pad_token_equal_to_eos_is_rejected(tiny_model_dir):
    from introspection.finetune.label_mask import label_mask_report

    tokenizer = _tokenizer(tiny_model_dir)
    tokenizer.pad_token = tokenizer.eos_token
    with pytest.raises(ValueError, match="equals its eos token"):
        label_mask_report(tokenizer, _yes_rows(1)[0], max_length=512)


# --- training --------------------------------------------------------------------------------------


def test_lora_run_learns_the_answer_and_writes_an_adapter(tiny_model_dir, tmp_path):
    from omegaconf import OmegaConf
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from introspection.finetune.training import finetune

    tokenizer = _tokenizer(tiny_model_dir)
    rows = _yes_rows(16)
    # High LR and several epochs: the random tiny model must learn in ~48 steps (seconds on 2 cores).
    cfg = OmegaConf.structured(FinetuneConfig(name="tiny", method="lora", lora=LoraSettings(r=16, alpha=32),
                                              epochs=12, learning_rate=5e-3, batch_size=4))
    out_dir = tmp_path / "runs" / "adapter"
    result = finetune(str(tiny_model_dir), tokenizer, rows, cfg, out_dir, progress=False)

    assert result.adapter_dir == str(out_dir) and not result.merged
    assert result.n_examples == 16 and result.n_steps == 48
    assert result.train_token_accuracy is not None and result.seconds > 0 and result.tokens_per_second > 0
    assert {"adapter_config.json", "adapter_model.safetensors", "lineage.json", "tokenizer_config.json"} <= {
        p.name for p in out_dir.iterdir()}
    assert [p.name for p in out_dir.parent.iterdir()] == ["adapter"]  # no temp folder left behind
    assert not json.loads((out_dir / "adapter_config.json").read_text()).get("modules_to_save")

    lineage = json.loads((out_dir / "lineage.json").read_text())
    assert lineage["base_path"] == str(tiny_model_dir) and lineage["n_rows"] == 16
    assert lineage["rows_hash"] == rows_hash(rows)
    assert set(lineage["versions"]) >= {"torch", "transformers", "trl", "peft"}
    hp = lineage["hyperparameters"]
    assert hp["learning_rate"] == 5e-3 and hp["lora"]["r"] == 16
    assert hp["resolved"]["dtype"] == "float32" and hp["resolved"]["bf16"] is False
    assert hp["resolved"]["completion_only_loss"] is True
    losses = [entry["loss"] for entry in lineage["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0] - 1.0, losses

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = _answer_token_probability(base, tokenizer, rows[0]["prompt"], "yes")
    merged = PeftModel.from_pretrained(base, out_dir).merge_and_unload()
    after = _answer_token_probability(merged, tokenizer, rows[0]["prompt"], "yes")
    # What training optimises, read directly: the answer's tokens go from chance (1/vocabulary) to likely.
    # (Greedy text from a 48-step tiny model flipped between "yes..." and "esy..." across CPUs, so the
    # test reads probabilities. Only the answer is checked: the fixture zeroes the output-layer rows of
    # every token but letters and space and LoRA leaves that layer alone, so <|im_end|> cannot win; the
    # full-finetune test below checks that the model also learns to stop.)
    assert before < 0.05 and after > 0.5, (before, after)


def test_full_run_saves_full_weights_and_replaces_old_output(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from introspection.finetune.training import finetune

    tokenizer = _tokenizer(tiny_model_dir)
    out_dir = tmp_path / "full"
    out_dir.mkdir()
    (out_dir / "stale.txt").write_text("from an older run")
    cfg = FinetuneConfig(name="tiny_full", method="full", epochs=4, learning_rate=1e-3, batch_size=4)
    result = finetune(str(tiny_model_dir), tokenizer, _yes_rows(16), cfg, out_dir, progress=False)

    names = {p.name for p in out_dir.iterdir()}
    assert result.merged and {"model.safetensors", "config.json", "lineage.json"} <= names
    assert "adapter_config.json" not in names and "stale.txt" not in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    assert _generate(model, tokenizer, _yes_rows(16)[3]["prompt"]) == "yes"


def test_failed_run_leaves_nothing_behind(tiny_model_dir, tmp_path):
    from introspection.finetune.training import finetune

    bad_rows = [{"prompt": [{"role": "user", "content": "q"}], "completion": "not a message list"}]
    with pytest.raises(ValueError, match="row 0"):
        finetune(str(tiny_model_dir), _tokenizer(tiny_model_dir), bad_rows, FinetuneConfig(name="t"),
                 tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_method_is_a_clear_error(tiny_model_dir, tmp_path):
    from introspection.finetune.training import finetune

    with pytest.raises(ValueError, match="finetune.method='dora'.*lora, qlora, full"):
        finetune(str(tiny_model_dir), _tokenizer(tiny_model_dir), _yes_rows(2), FinetuneConfig(name="t", method="dora"),
                 tmp_path / "out", progress=False)


def test_qlora_without_cuda_says_to_use_lora(tiny_model_dir, tmp_path):
    import torch

    from introspection.finetune.training import finetune

    if torch.cuda.is_available():
        pytest.skip(reason="this machine has CUDA: qlora is allowed here")
    with pytest.raises(ValueError, match="qlora needs a CUDA GPU.*use finetune=lora"):
        finetune(str(tiny_model_dir), _tokenizer(tiny_model_dir), _yes_rows(2), FinetuneConfig(name="t", method="qlora"),
                 tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cpu_scores_only_labelled_positions_with_the_same_loss(tiny_model_dir):
    """The CPU speed-up (score_labelled_positions_only_on_cpu) must not change what is trained: the fused
    head's loss, per-token log-probs, entropy and top-1 hits equal those of TRL's score-everything path."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM

    from introspection.finetune.trainer import score_labelled_positions_only_on_cpu

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    ids = torch.randint(3, model.config.vocab_size, (3, 12), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :8] = -100  # the prompt
    labels[1, 10:] = -100  # a shorter answer
    original = trl_utils._use_triton
    try:
        trl_utils._use_triton = getattr(original, "__wrapped_decide__", original)
        assert not trl_utils._use_triton(torch.device("cpu"))  # TRL's own choice on CPU: score everything
        everything = model(input_ids=ids, labels=labels, fused_lm_head=True)
        assert score_labelled_positions_only_on_cpu() and trl_utils._use_triton(torch.device("cpu"))
        compact = model(input_ids=ids, labels=labels, fused_lm_head=True)
    finally:
        trl_utils._use_triton = original
    assert torch.allclose(compact.loss, everything.loss, atol=1e-6)
    for field in ("log_probs", "entropy"):
        assert torch.allclose(getattr(compact, field), getattr(everything, field), atol=1e-5)
    assert torch.equal(compact.is_top1, everything.is_top1) and torch.equal(compact.label_mask, everything.label_mask)


# --- per-model learning rate -----------------------------------------------------------------------
def test_a_models_own_learning_rate_is_the_one_it_trains_at_and_is_keyed_by(tiny_model_dir, tmp_path):
    """finetune.learning_rate_by_model[name] replaces finetune.learning_rate for that model only; the
    adapter key hashes the rate used, so the same rate given directly reuses the adapter."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from introspection.core.config import ModelEntry
    from introspection.core.store import Store, digest
    from introspection.stages.adapters import finetune_model
    from introspection.stages.model_ref import ModelRef
    from introspection.weights.resolve import resolve_model

    store = Store(tmp_path / "store")
    entry = asdict(ModelEntry(name="tiny", source="local", path=str(tiny_model_dir), dtype="float32"))
    base = ModelRef("tiny", entry, asdict(resolve_model(ModelEntry(**entry), store.root, where="test")))
    rows = _yes_rows(4)
    write_rows(rows, tmp_path / "rows.jsonl")

    def cfg(**over) -> dict:
        plain = OmegaConf.to_container(OmegaConf.structured(FinetuneConfig(name="t", lora=LoraSettings(r=4, alpha=8))))
        return plain | {"batch_size": 4, "learning_rate": 1e-3} | over

    def tune(config: dict, model: ModelRef = base) -> ModelRef:
        return finetune_model(store, model, tmp_path / "rows.jsonl", digest(rows), config, "tiny[self]")

    own = tune(cfg(learning_rate_by_model={"tiny": 5e-3, "other": 7e-3}))
    lineage = json.loads((Path(own.adapter_dir) / "lineage.json").read_text())
    assert lineage["hyperparameters"]["learning_rate"] == 5e-3
    assert lineage["log_history"][0]["learning_rate"] == pytest.approx(5e-3)  # the optimizer's rate, constant

    runs = store.worker_runs
    assert tune(cfg(learning_rate=5e-3)).adapter_key == own.adapter_key and store.worker_runs == runs
    # A table that does not name this model leaves finetune.learning_rate, and its key, as they were.
    other_only = cfg(learning_rate_by_model={"other": 5e-3})
    assert tune(other_only).adapter_key != own.adapter_key
    assert tune(other_only).adapter_key == tune(cfg()).adapter_key


# --- the saved folder is checked before the store seals it -----------------------------------------
@pytest.fixture(scope="module")
def trained_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    from introspection.finetune.training import finetune

    out_dir = tmp_path_factory.mktemp("trained") / "adapter"
    cfg = FinetuneConfig(name="t", lora=LoraSettings(r=4, alpha=8), epochs=1, batch_size=2, learning_rate=1e-3)
    finetune(str(tiny_model_dir), _tokenizer(tiny_model_dir), _yes_rows(4), cfg, out_dir, progress=False)
    return out_dir


def _copy_adapter(trained_adapter: Path, folder: Path) -> Path:
    import shutil

    return Path(shutil.copytree(trained_adapter, folder / "adapter"))


def test_an_adapter_folder_without_an_adapter_is_refused_and_nothing_is_sealed(trained_adapter, tiny_model_dir,
                                                                                tmp_path):
    """What FSDP with a sharded state dict left: rank 0's lineage.json and no adapter. The store's build
    (as finetune_worker and finetune_on_ranks run it) raises one line, and no artifact appears."""
    from introspection.core.store import Store, digest
    from introspection.stages.worker import check_trained_folder

    store = Store(tmp_path / "store")
    payload = {"model": {"resolved": {"path": str(tiny_model_dir)}}}
    key = digest("adapter without config")

    def build(folder: Path) -> dict:
        adapter = folder / "adapter"
        adapter.mkdir()
        (adapter / "lineage.json").write_text((trained_adapter / "lineage.json").read_text())
        return check_trained_folder(payload, folder, {"merged": False})

    with pytest.raises(ValueError, match=r"adapter folder .*/adapter \(finetuned from .*\) has no adapter_config\.json "
                                         r"and no adapter_model\.safetensors"):
        store.get_or_build("adapters", key, build)
    assert store.get("adapters", key) is None and not list((store.root / "tmp").iterdir())

    def build_good(folder: Path) -> dict:
        _copy_adapter(trained_adapter, folder)
        return check_trained_folder(payload, folder, {"merged": False})

    assert (store.get_or_build("adapters", key, build_good) / "adapter" / "adapter_config.json").is_file()


def test_adapter_tensors_that_do_not_fit_the_base_are_refused(trained_adapter, tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from introspection.finetune.adapter_check import check_saved_model

    check_saved_model(trained_adapter, str(tiny_model_dir), merged=False)  # the trained one loads

    wrong_rank = _copy_adapter(trained_adapter, tmp_path / "rank")
    config = json.loads((wrong_rank / "adapter_config.json").read_text())
    (wrong_rank / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    with pytest.raises(ValueError, match=r"LoRA tensors do not fit .* has shape \[4, \d+\], PEFT needs \[8, \d+\]"):
        check_saved_model(wrong_rank, str(tiny_model_dir), merged=False)

    missing = _copy_adapter(trained_adapter, tmp_path / "missing")
    tensors = load_file(str(missing / "adapter_model.safetensors"))
    dropped = sorted(tensors)[0]
    save_file({name: t for name, t in tensors.items() if name != dropped}, str(missing / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match=rf"lacks 1 of the {len(tensors)} LoRA tensors .*first: {dropped}"):
        check_saved_model(missing, str(tiny_model_dir), merged=False)

    with pytest.raises(ValueError, match=r"model folder .* has no config\.json"):  # an adapter is no full model
        check_saved_model(trained_adapter, str(tiny_model_dir), merged=True)


def test_qlora_stores_its_4bit_weights_in_the_compute_dtype():
    """FSDP and ZeRO-3 shard only float tensors of one dtype: QLoRA's packed weights must be stored in it."""
    import torch

    from introspection.finetune.trainer import qlora_quantization_config

    quantization = qlora_quantization_config()
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization.bnb_4bit_quant_storage == quantization.bnb_4bit_compute_dtype
