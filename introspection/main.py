"""The experiment, top to bottom: does a model predict its own behaviour better than another model
trained on that same behaviour?  (Binder et al., 2024, "Looking Inward")

    python -m introspection.main                                   # embedded demo models on CPU
    python -m introspection.main model=llama3_70b tasks=all -m     # a sweep

For targets T and predictors P (the two models of `model=`):
  1. each base model answers the object-level prompts of the train tasks (and, for the untrained
     baseline, the held-out object and hypothetical prompts);
  2. each model is finetuned on its own behaviour: hypothetical prompt -> property of its answer (T_self);
  3. each T_self answers the object-level prompts (train and held-out) and the held-out hypotheticals;
  4. every other model P is finetuned on T_self's train behaviour (P trained on T_self = cross);
  5. each cross-predictor answers the held-out hypotheticals;
  6. scoring: on held-out items, T_self's self-prediction vs P's cross-prediction of T_self's behaviour,
     on identical items, with CIs, mode baselines and a paired test.
These steps, in this order, are introspection/experiments/cross_prediction.py (`experiment=cross_prediction`,
the default); the other experiments are its siblings there (`experiment=calibration|behavior_shift|scaling|...`).

Below, `main` reads top to bottom: the start checks (the chosen experiment's own included), then either the
pre-flight plan (`experiment.stop_after=plan`: the experiment's steps recorded, no model loads) or the run,
then the outputs (results.json, report.md, W&B).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from introspection.checks.start_checks import run_start_checks
from introspection.cli import CONF_DIR, rewrite_model_sides, validate_cli
from introspection.core import config as _config  # noqa: F401  (registers the structured configs)
from introspection.core.errors import one_line_errors
from introspection.core.preloaded_start import preload_libraries
from introspection.core.profile import Profile
from introspection.core.store import Store
from introspection.experiments import Experiment, parse_options, registry
from introspection.outputs.run_outputs import log_results, print_summary, training_logging, write_results
from introspection.pipeline.executor import LocalExecutor
from introspection.pipeline.run_context import RunContext

log = logging.getLogger("introspection")


def experiments() -> dict[str, Experiment]:
    """experiment.name -> Experiment: every module of introspection/experiments."""
    return registry()


def chosen_experiment(cfg: DictConfig) -> Experiment:
    name, known = cfg.experiment.name, experiments()
    if name not in known:
        raise ValueError(f"unknown experiment.name '{name}'; valid: {', '.join(known)}")
    return known[name]


def note_unused_learning_rates(cfg: DictConfig) -> None:
    """finetune.learning_rate_by_model may name models of other pairs (one finetune config serves several), but
    never silently: catalogue entries not in this pair are logged, a name no entry has (a typo?) is a warning."""
    unused = set(cfg.finetune.learning_rate_by_model) - {cfg.model.m1.name, cfg.model.m2.name}
    catalogue = {OmegaConf.load(path).get("name") for path in (CONF_DIR / "model" / "llm").glob("*.yaml")}
    for names, say in ((unused & catalogue, log.info), (unused - catalogue, log.warning)):
        if names:
            say("finetune.learning_rate_by_model names %s, neither of this pair's models (%s, %s): ignored",
                sorted(names), cfg.model.m1.name, cfg.model.m2.name)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@one_line_errors  # bad input, missing files, a full disk: `error: <one line>` and exit code 2
def main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    experiment = chosen_experiment(cfg)
    options = parse_options(experiment, cfg.experiment.options)  # typed; a bad option fails before any model work
    # config, task data, GPUs, weights and the experiment's own checks: one line in seconds, before any model work
    run_start_checks(cfg, experiment, options)
    _config.apply_seed(cfg)  # top-level `seed` offsets tasks/inference/finetune seeds (0: every key as before)
    if cfg.experiment.stop_after == "plan":  # the pre-flight plan: the experiment's steps recorded, no model loads
        from introspection.preflight.plan import run_plan

        return run_plan(cfg, run_dir, experiment, options)
    store = Store(cfg.store_dir)
    run_profile = Profile()  # each stage it is handed to adds its wall, tokens and memory: results.json "profile"
    log.info("run folder %s; artifact store %s", run_dir, store.root)
    note_unused_learning_rates(cfg)
    # On a CPU machine workers fork from a parent that imported their libraries once: vLLM only where it serves
    preload_libraries(["peft", "trl", *(["vllm"] if cfg.inference.backend == "vllm" else [])])
    with training_logging(cfg, run_dir):  # logger.log_training: finetune curves to this run's W&B project and group
        result = experiment.run(RunContext(cfg, store, run_dir, LocalExecutor(), run_profile), options)
    if experiment.render is not None:  # the experiment's own section of report.md
        result.report = experiment.render(result, run_dir)
    results = result.as_dict()
    results["store"] = store.counts()
    results["profile"] = run_profile.summary()
    write_results(results, cfg, run_dir)
    print_summary(results, run_dir)
    log_results(results, cfg, run_dir)
    self_cells = [c for c in results["cells"] if c["kind"] == "self" and c["task"] == c["property"] == "all"]
    return float(sum(c["accuracy"] for c in self_cells) / len(self_cells)) if self_cells else None


def entry() -> None:
    sys.argv[1:] = rewrite_model_sides(sys.argv[1:])  # model.m1=NAME -> model/llm@model.m1=NAME
    validate_cli(sys.argv[1:])  # one-line errors for bad group options, keys and values
    main()


if __name__ == "__main__":
    entry()
