"""Checks that read a model's own files: its local folder and chat template file, its LoRA rank against the
hidden size its config.json records, and (once the weights are at hand) its longest prompts against its
context. introspection/checks/start_checks.py runs the first ones at start; pipeline runs check_models_fit right
after the models are resolved, before any inference."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

SLOTS = ("m1", "m2")


def check_model_files(cfg: DictConfig) -> None:
    """A local model folder that exists, and a chat template file that is valid Jinja (transformers would
    otherwise fail on it only when the first prompt is rendered, after minutes of work)."""
    import jinja2

    from introspection.weights.chat_templates import NAMED_TEMPLATES

    for slot in SLOTS:
        entry = cfg.model[slot]
        if entry.source == "local" and not Path(entry.path).expanduser().is_dir():
            raise ValueError(f"local model folder {entry.path!r} (model.{slot}.path) does not exist; give a folder "
                             "with config.json, safetensors and tokenizer files")
        if entry.source == "local":  # an empty folder would otherwise read as "has no chat template"
            from introspection.weights.resolve import local_model_problem

            problem = local_model_problem(Path(entry.path).expanduser(), entry.path, f"model.{slot}")
            if problem:
                raise ValueError(problem)
        template = entry.chat_template
        if not template or template in NAMED_TEMPLATES:
            continue
        path = Path(template).expanduser()
        if not path.is_file():
            raise ValueError(f"chat template {template!r} (model.{slot}.chat_template) is neither a named template "
                             f"({', '.join(NAMED_TEMPLATES)}) nor an existing .jinja file")
        try:
            jinja2.Environment().parse(path.read_text(encoding="utf-8"))
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"chat template {path} (model.{slot}.chat_template) is not valid Jinja: line "
                             f"{exc.lineno}: {exc.message}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"chat template {path} (model.{slot}.chat_template) is not UTF-8 text ({exc.reason})") from None


def model_config_here(cfg: DictConfig, slot: str) -> dict | None:
    """The model's config.json when it can be read without any work (a local folder, an embedded model
    converted before, a hub model in the local cache); for an embedded model not converted yet, the hidden
    size its GGUF records; None otherwise."""
    import json

    from introspection.weights.embedded import EMBEDDED

    entry = cfg.model[slot]
    if entry.source == "local":
        path = Path(entry.path).expanduser() / "config.json"
    elif entry.source == "embedded":
        path = Path(str(cfg.store_dir)).expanduser() / "models" / str(entry.path) / "config.json"
        spec = EMBEDDED.get(str(entry.path))
        if not path.is_file() and spec is not None and spec.hidden_size:  # not converted yet: judge it now anyway
            return {"hidden_size": spec.hidden_size}
    elif entry.source == "hub":
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(entry.path, "config.json", revision=entry.revision)
        path = Path(found) if isinstance(found, str) else None
    else:
        path = None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable here: the model loader names the problem later
        return None


def _hidden_size(model_config: dict) -> int | None:
    for config in (model_config, model_config.get("text_config") or {}):
        for key in ("hidden_size", "d_model", "n_embd"):
            if isinstance(config.get(key), int):
                return config[key]
    return None


def check_lora_rank(cfg: DictConfig) -> None:
    """A LoRA rank above the model's hidden size adds memory and no capacity (finetune.lora.r=1000000
    was killed for memory after 86 s); checked wherever the model's config.json is already at hand."""
    if cfg.finetune.method not in ("lora", "qlora"):
        return
    for slot in SLOTS:
        _check_rank_fits(cfg.finetune.lora.r, model_config_here(cfg, slot), slot, cfg.model[slot].name)


def _check_rank_fits(rank: int, model_config: dict | None, slot: str, name: str) -> None:
    hidden = _hidden_size(model_config) if model_config else None
    if hidden is not None and rank > hidden:
        raise ValueError(f"finetune.lora.r={rank} exceeds the hidden size {hidden} of model.{slot} "
                         f"({name}); valid: 1 to {hidden} (the paper used 32)")


# --- once the weights are at hand ----------------------------------------------------------------
# Embedded models are converted, and hub models found, only when the run resolves them; these checks run
# right after that and before any inference, so a prompt that does not fit fails in seconds, not after
# minutes of answering (vLLM's own error for it came 22 s into the run).
PROMPTS_TO_MEASURE = 16  # the longest prompts by characters, per kind, tokenized exactly


def check_models_fit(cfg: DictConfig, models: dict, plan=None) -> None:
    """The LoRA rank against each model's hidden size (now that its config.json is on disk) and, given the
    run's plan, the longest prompts plus their answer caps against model.mX.max_model_len."""
    import json

    for slot, model in models.items():
        folder = Path(model.resolved["path"])
        config_file = folder / "config.json"
        if cfg.finetune.method in ("lora", "qlora") and config_file.is_file():
            _check_rank_fits(cfg.finetune.lora.r, json.loads(config_file.read_text(encoding="utf-8")), slot,
                             model.label)
        if plan is not None and folder.is_dir():
            _check_context(cfg, slot, model, plan)


def _longest(requests: list, n: int) -> list:
    return sorted(requests, key=lambda r: sum(len(m["content"]) for m in r.messages), reverse=True)[:n]


def _check_context(cfg: DictConfig, slot: str, model, plan) -> None:
    from introspection.weights.resolve import ResolvedModel, load_tokenizer

    tokenizer = load_tokenizer(ResolvedModel(**model.resolved))
    limit = int(cfg.model[slot].max_model_len)
    kinds = (("object-level", plan.object_requests(plan.train_items + plan.test_items), cfg.inference.max_tokens,
              "inference.max_tokens"),
             ("hypothetical", plan.hypothetical_requests(plan.train_items + plan.test_items),
              cfg.inference.max_tokens_hypothetical, "inference.max_tokens_hypothetical"))
    for kind, requests, cap, cap_key in kinds:
        for request in _longest(requests, PROMPTS_TO_MEASURE):
            text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if tokens + cap > limit:
                raise ValueError(
                    f"model.{slot}.max_model_len={limit} ({model.label}) is too short for the {kind} prompt of "
                    f"{request.request_id}: {tokens} prompt tokens + {cap_key}={cap} = {tokens + cap}; raise "
                    f"model.{slot}.max_model_len (up to the model's own context) or use shorter task items")
