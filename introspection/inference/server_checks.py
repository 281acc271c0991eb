"""Start checks of a server model (model.mX.source=server), each a one-line ValueError within seconds, so a run
that cannot reach its endpoint fails before any other model loads (the registry runs them, start_checks.py
calls the registry):

- from the config, at every start: a base URL, no chat template (the server renders its own), `weights` that
  are a folder here when given as a path, a variable name in api_key_env (finetune.openai's hyperparameters:
  config.check_choices);
- once models will run: a server model that the experiment finetunes needs finetune.api=openai, or `weights`
  and a LoRA method for TRL (an experiment refuses in its own check what a served model cannot do: behaviour
  shift's further training of a served target; open models train with TRL either way: the start logs one line saying which side trains how), its key variable set, the
  endpoint reachable (GET <base_url>/models within a few seconds) and listing the model id, and for a finetune
  the endpoint offering the fine-tuning API (GET <base_url>/fine_tuning/jobs?limit=1 answers) or, for TRL,
  taking LoRA adapters at runtime (server_lora.check_adapters_accepted).
A dry run (experiment.stop_after=build|plan) asks no server and needs no key: a plan is made offline.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from omegaconf import DictConfig

log = logging.getLogger(__name__)

REACH_TIMEOUT_S = 5.0  # to connect to the endpoint and to hear its model list
IDS_SHOWN = 8  # model ids named in the error for an id the endpoint does not list
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

def check_server_entry(cfg: DictConfig, slot: str) -> None:
    entry, where = cfg.model[slot], f"model.{slot}"
    url = entry.base_url
    if not url or not str(url).startswith(("http://", "https://")):
        raise ValueError(f"{where}.base_url={url!r} is not valid for a server model ({entry.name}); valid: the "
                         "endpoint's URL up to /v1, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
    if entry.chat_template:
        raise ValueError(f"{where}.chat_template={entry.chat_template!r} is set but {entry.name} is a server model: "
                         f"the server renders its own template; set {where}.chat_template=null")
    weights = entry.get("weights")
    if weights and str(weights).startswith(("/", ".", "~")) and not Path(str(weights)).expanduser().is_dir():
        raise ValueError(f"{where}.weights={weights!r} ({entry.name}) is not a folder here; valid: the folder of the "
                         "weights the server runs (readable here, where its adapters train), a hub id, or an "
                         "embedded model's key")
    name = entry.api_key_env
    if name is not None and not _ENV_NAME.match(str(name)):
        raise ValueError(f"{where}.api_key_env={'<redacted>' if len(str(name)) > 40 else repr(name)} is not a "
                         "variable name; give the NAME of the variable that holds the key (e.g. OPENAI_API_KEY), "
                         "never the key, or null for a server that needs none")


def check_finetune_route(cfg: DictConfig, slot: str, finetuned: bool = True) -> str | None:
    """How the experiment finetunes this server model (`finetuned`: whether it does, the experiment's own answer,
    Experiment.finetunes): None (it does not), "openai" (finetune.api=openai: the fine-tuning API at its endpoint)
    or "lora" (TRL trains an adapter of its `weights` here, which its server then loads: server_lora.py). A
    one-line ValueError when it cannot be finetuned as configured. The one line of how each side trains is logged."""
    if not finetuned:
        return None
    entry, where = cfg.model[slot], f"model.{slot}"
    other = "m2" if slot == "m1" else "m1"
    route = "openai" if cfg.finetune.get("api") == "openai" else "lora"
    answers_only = (f"or use it where it only answers: experiment=untrained_self, or experiment=behavior_shift "
                    f"experiment.options.target={other} experiment.options.source={slot}")
    if route == "lora" and not entry.get("weights"):
        raise ValueError(f"{where} ({entry.name}) is a server model and experiment={cfg.experiment.name} finetunes it "
                         f"with TRL (finetune={cfg.finetune.name}), but {where}.weights is not set: set it to the "
                         "weights the server runs (a local folder, hub id or embedded model) to train a LoRA adapter "
                         "here that the server loads, or set finetune=openai to finetune it through the OpenAI "
                         f"fine-tuning API at {entry.base_url}, {answers_only}")
    if route == "lora" and cfg.finetune.method not in ("lora", "qlora"):
        raise ValueError(f"finetune.method={cfg.finetune.method} cannot finetune {where} ({entry.name}), a server "
                         "model: a full finetune makes new weights, and a running server loads only LoRA adapters "
                         "into the weights it serves; use finetune.method=lora or qlora, or serve the model in-process "
                         f"({where}.source=local|hub|embedded)")
    sides = [f"model.{s} ({cfg.model[s].name}) " + _how_it_trains(cfg, s) for s in ("m1", "m2")]
    log.info("finetunes: %s", "; ".join(sides))
    return route


def _how_it_trains(cfg: DictConfig, slot: str) -> str:
    entry = cfg.model[slot]
    trl = f"with TRL (finetune={cfg.finetune.name}: method {cfg.finetune.method})"
    if entry.source != "server":
        return trl
    if cfg.finetune.get("api") == "openai":
        return f"through the OpenAI fine-tuning API at {entry.base_url}"
    return f"{trl} on {entry.weights}, its adapters loaded into the server at {entry.base_url}"


def check_server_service(cfg: DictConfig, slot: str, finetuned: bool = True) -> None:
    """Finetune route (when the experiment finetunes this slot), key, reachability, model id and what its
    finetune needs, in that order (the cheapest first)."""
    from introspection.inference.server_client import ServerClient, ServerError, api_key
    from introspection.inference.server_lora import check_adapters_accepted

    route = check_finetune_route(cfg, slot, finetuned)
    entry, where = cfg.model[slot], f"model.{slot}"
    key = api_key(entry, where)
    client = ServerClient(str(entry.base_url), key, timeout_s=REACH_TIMEOUT_S, max_retries=0,
                          connect_timeout_s=REACH_TIMEOUT_S)
    try:
        listing = client.get("models")
        if route == "openai":
            check_finetuning_offered(client, entry, where)
        elif route == "lora":
            check_adapters_accepted(client, where, int(cfg.finetune.lora.r))
    except ServerError as exc:
        refused = any(f"HTTP {code}" in str(exc) for code in (401, 403))
        fix = (f"check the key in {entry.api_key_env}" if refused and entry.api_key_env else
               f"start the server or correct {where}.base_url")
        raise ValueError(f"{where}.base_url={entry.base_url} ({entry.name}) cannot be used within "
                         f"{REACH_TIMEOUT_S:.0f} s: {exc}; {fix}") from None
    finally:
        client.close()
    ids = sorted(str(m.get("id")) for m in (listing.get("data") or []) if isinstance(m, dict))
    if str(entry.path) not in ids:
        shown = ", ".join(ids[:IDS_SHOWN]) + (f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else "")
        raise ValueError(f"{where}.path={entry.path!r} is not a model {entry.base_url} lists; it lists "
                         f"{shown or 'none'}; set {where}.path to one of them")


def check_finetuning_offered(client, entry, where: str) -> None:
    """finetune.api=openai needs an endpoint with the fine-tuning API (the OpenAI API has it; a vllm serve
    does not): GET fine_tuning/jobs?limit=1 must answer within the reach timeout."""
    from introspection.inference.server_client import ServerError

    try:
        client.get("fine_tuning/jobs", params={"limit": 1})
    except ServerError as exc:
        raise ValueError(f"{where}.base_url={entry.base_url} ({entry.name}) does not offer the fine-tuning API that "
                         f"finetune=openai needs: {exc}; finetune it at an endpoint that does (the OpenAI API), or use "
                         "it where it only answers (experiment=untrained_self)") from None
