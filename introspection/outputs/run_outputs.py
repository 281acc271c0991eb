"""Outputs of a run: results.json, matrix.csv, scored items, the heatmap, the printed table, and W&B."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from introspection.core import secrets
from introspection.core.hydra_job import job_overrides
from introspection.core.store import write_json_atomic, write_jsonl_atomic, write_text_atomic
from introspection.outputs.report import render as render_report
from introspection.outputs.results import PairedTest, Results

log = logging.getLogger(__name__)

MATRIX_COLUMNS = ["predictor", "target", "kind", "task", "property", "accuracy", "ci_low", "ci_high", "se", "n",
                  "mode_baseline", "compliance", "flag"]


def typed(results: dict | Results) -> Results:
    """The results a run assembles (ExperimentResult.as_dict, plus store counts and profile) as Results."""
    return results if isinstance(results, Results) else Results.of_run(results)


def write_results(results: dict, cfg: DictConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = Results.of_run(results, experiment=cfg.experiment.name, noncompliant=cfg.experiment.noncompliant,
                             compliance=OmegaConf.select(cfg, "tasks.compliance", default="authors"),  # authors | strict
                             config=redact(OmegaConf.to_container(cfg, resolve=True)))
    write_json_atomic(run_dir / "results.json", summary.to_dict())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MATRIX_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(c.to_dict() for c in summary.cells)
    write_text_atomic(run_dir / "matrix.csv", buf.getvalue())
    write_jsonl_atomic(run_dir / "items.jsonl", results.get("pairs", []))
    render_report(run_dir)


def redact(obj):
    """A config (nested dicts/lists) without credentials, for saved configs and W&B: values under secret
    keys, and any secret value given on the command line; introspection/core/secrets.py has the one rule."""
    from introspection.core.errors import command_line_secrets

    return secrets.redact(obj, secrets.secret_values(obj) | command_line_secrets())


def format_table(results: dict | Results) -> str:
    """The headline cells, one line each (a flagged cell ends with its flag), then the self-vs-cross lines."""
    results = typed(results)
    cells = sorted(results.headline(), key=lambda c: (c.target, c.kind != "self", c.kind))
    pw = max([22] + [len(c.predictor) + 2 for c in cells])  # long labels (finetuned models) widen the column
    tw = max([22] + [len(c.target) + 2 for c in cells])
    kw = max([11] + [len(c.kind) + 2 for c in cells])
    lines = [f"{'predictor':<{pw}}{'target':<{tw}}{'kind':<{kw}}{'accuracy':>9}  {'95% CI':<17}{'n':>6}{'baseline':>10}"
             f"{'compliance':>12}  flag"]
    for c in cells:
        ci = f"[{c.ci_low:.1%}, {c.ci_high:.1%}]"
        flag = f"  {c.flag}" if c.flag else ""
        lines.append(f"{c.predictor:<{pw}}{c.target:<{tw}}{c.kind:<{kw}}{c.accuracy:>9.1%}  {ci:<17}"
                     f"{c.n:>6}{c.mode_baseline:>10.1%}{c.compliance:>12.1%}{flag}")
    lines += [paired_line(t) for t in results.pooled_tests()]
    return "\n".join(lines)


def paired_line(test: PairedTest) -> str:
    """One self-vs-cross line; a flagged comparison says it is not informative before any number."""
    what = test.label or f"self vs cross for target {test.target}"
    numbers = (f"{test.self_accuracy:.1%} vs {test.cross_accuracy:.1%} ({test.cross_predictor}), "
               f"difference {test.delta:+.1%} [{test.ci_low:+.1%}, {test.ci_high:+.1%}], n={test.n}, "
               f"exact McNemar p={test.mcnemar_p:.3g}")
    if test.flag:
        return f"{what}: not informative ({test.flag}); measured {numbers}"
    return f"{what}: {numbers}"


def print_summary(results: dict | Results, run_dir: Path) -> None:
    results = typed(results)
    store = results.store or {}
    if results.items_per_task:
        print("\nitems per task: " + ", ".join(f"{t} {n}" for t, n in results.items_per_task.items()))
    print("\n" + format_table(results))
    if any(c.flag for c in results.headline()):
        from introspection.analysis.scoring import LOW_COMPLIANCE, NO_SIGNAL_BASELINE

        print(f"flagged cells say nothing about introspection: no signal = mode baseline >= {NO_SIGNAL_BASELINE:.0%}, "
              f"low compliance = under {LOW_COMPLIANCE:.0%} of answers in the property's format")
    print(f"\nmodel worker processes started: {store.get('worker_runs', 0)}; artifacts computed "
          f"{len(store.get('computed', []))}, reused {len(store.get('reused', []))}")
    if results.profile:
        print(profile_line(results.profile))
    print(f"results written to {run_dir}/ (report.md, results.json, matrix.csv, items.jsonl, plots/)")


def profile_line(profile: dict) -> str:
    """One line of the run's profile: the total, the stages' share and the biggest stage."""
    line = f"time: {profile['wall_s']:.1f} s in total, {profile['stages_wall_s']:.1f} s in {profile['n_stages']} stages"
    if profile.get("biggest_stage"):
        share = profile["biggest_stage_wall_s"] / profile["wall_s"] if profile["wall_s"] > 0 else 0.0
        line += f"; biggest: {profile['biggest_stage']} {profile['biggest_stage_wall_s']:.1f} s ({share:.0%})"
    line += f"; peak memory {profile['peak_rss_gib']:.2f} GiB RAM"
    if profile.get("peak_gpu_gib") is not None:
        line += f", {profile['peak_gpu_gib']:.2f} GiB GPU"
    return line + " (report.md: Where the time went)"


def wandb_mode(cfg_mode: str) -> str:
    """auto: online when credentials exist (env key or a netrc entry), offline otherwise."""
    if cfg_mode != "auto":
        return cfg_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "online" if "api.wandb.ai" in netrc.read_text() else "offline"
    except OSError:
        return "offline"


def start_wandb_run(wandb, results_at: Path, **init):
    """`wandb.init(**init)`, with W&B's own refusals (a server at WANDB_BASE_URL that is not W&B, a key it
    rejects) turned into one line: they arrive after the work, so the line says where the results are."""
    try:
        return wandb.init(**init)
    except wandb.errors.Error as exc:
        url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
        raise OSError(f"W&B did not accept the run at {url} ({type(exc).__name__}: {_one_line(str(exc))}); the "
                      f"results are in {results_at}; check WANDB_BASE_URL and WANDB_API_KEY, or rerun with "
                      "WANDB_MODE=offline (every artifact is reused) and `wandb sync` it later, or logger=none") from None


def _one_line(text: str, limit: int = 160) -> str:
    """A server's error text (often an HTML page) as one short line."""
    text = re.sub(r"<title>(.*?)</title>|<[^>]*>", r" \1 ", text, flags=re.S | re.I)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "") or "no message"


SLOTS = ("m1", "m2")  # target slots: every run's summary has the same flat keys, whatever the models
TRAINING_SWITCH = "INTROSPECTION_WANDB_TRAINING"  # read by the finetune worker (introspection/stages/worker.py)


def _main_paired_test(results: Results, slot: str, target: str) -> PairedTest | None:
    """The pooled self-vs-cross test for target; with several, the one against the other slot's model."""
    tests = [t for t in results.pooled_tests() if t.target == target and not t.label]
    others = {m for s, m in (results.models or {}).items() if s in SLOTS and s != slot}
    return next((t for t in tests if t.cross_predictor in others), tests[0] if tests else None)


def summary_metrics(results: dict | Results) -> dict:
    """Flat W&B summary keys a sweep dashboard plots across pairs without knowing model names, per target
    slot (m1, m2): `<slot>/self_accuracy`, `<slot>/cross_accuracy` (each with _ci_low, _ci_high, _n, _flag),
    `<slot>/self_minus_cross` (with _ci_low, _ci_high, _flag), `<slot>/n` (paired items), `<slot>/p_value` (exact
    McNemar), `<slot>/model` and `<slot>/cross_predictor` (the names), and `<slot>/untrained_accuracy` when
    the untrained baseline ran. A value that was not measured is None, so every run has every key."""
    results = typed(results)
    models = results.models or {}
    cells = results.headline()
    out: dict = {}
    for slot in SLOTS:
        target = models.get(slot)
        test = _main_paired_test(results, slot, target) if target else None
        cross_predictor = test.cross_predictor if test else None
        picks = {"self": ("self", target), "cross": ("cross", cross_predictor), "untrained": ("untrained", target)}
        for name, (kind, predictor) in picks.items():
            cell = next((c for c in cells if c.kind == kind and c.target == target
                         and c.predictor == (predictor or c.predictor)), None) if target else None
            out[f"{slot}/{name}_accuracy"] = cell.accuracy if cell else None
            for key in ("ci_low", "ci_high", "n") + (("flag",) if name != "untrained" else ()):
                out[f"{slot}/{name}_{key}"] = getattr(cell, key) if cell else None
        out[f"{slot}/self_minus_cross"] = test.delta if test else None
        out[f"{slot}/self_minus_cross_ci_low"] = test.ci_low if test else None
        out[f"{slot}/self_minus_cross_ci_high"] = test.ci_high if test else None
        out[f"{slot}/self_minus_cross_flag"] = test.flag if test else None
        out[f"{slot}/n"] = test.n if test else None
        out[f"{slot}/p_value"] = test.mcnemar_p if test else None
        out[f"{slot}/model"] = target
        out[f"{slot}/cross_predictor"] = cross_predictor
    return out


def named_metrics(results: dict | Results) -> dict:
    """`<kind>/<predictor>-><target>/{accuracy,ci_low,ci_high,n}` for every headline cell."""
    out = {}
    for c in typed(results).headline():
        prefix = f"{c.kind}/{c.predictor}->{c.target}"
        out |= {f"{prefix}/{k}": getattr(c, k) for k in ("accuracy", "ci_low", "ci_high", "n")}
    return out


def profile_metrics(profile: dict) -> dict:
    """`profile/<key>` for the run's profile totals (wall_s, requests, tokens, peak memory, ...)."""
    return {f"profile/{k}": v for k, v in profile.items() if k != "stages"}


def log_results(results: dict | Results, cfg: DictConfig, run_dir: Path) -> None:
    """One W&B run per Hydra job: resolved config, the matrix as a table, the heatmap, the summary."""
    results = typed(results)
    if cfg.logger.backend == "none":
        return
    if cfg.logger.backend != "wandb":
        raise ValueError(f"unknown logger.backend '{cfg.logger.backend}'; valid: wandb, none")
    import wandb

    mode = wandb_mode(cfg.logger.mode)
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    config["overrides"] = redact(job_overrides())  # this job's command-line overrides: sweep dashboards slice by them
    with start_wandb_run(wandb, run_dir, project=cfg.logger.project, entity=cfg.logger.entity,
                         group=cfg.logger.group, tags=list(cfg.logger.tags), config=config, dir=str(run_dir),
                         mode=mode, job_type="experiment", settings=wandb.Settings(silent=True)) as run:
        table = wandb.Table(columns=MATRIX_COLUMNS, data=[[c.get(k) for k in MATRIX_COLUMNS] for c in results.cells])
        payload = {"matrix": table}
        for png in sorted((run_dir / "plots").glob("*.png")):  # the report's figures: matrix, properties, ...
            payload[f"plots/{png.stem}"] = wandb.Image(str(png))
        alternative = [c.to_dict() for c in results.alternative_treatment]
        for key, section in (*results.sections.items(), ("alternative_treatment", alternative)):  # lists of records
            rows = [{k: v for k, v in r.items() if not isinstance(v, list | dict)}
                    for r in (section if isinstance(section, list) else []) if isinstance(r, dict)]
            if rows:
                cols = sorted({k for r in rows for k in r})
                payload[key] = wandb.Table(columns=cols, data=[[r.get(k) for k in cols] for r in rows])
        if results.paired_tests:
            cols = sorted({k for t in results.paired_tests for k in t.record})
            payload["paired_tests"] = wandb.Table(columns=cols, data=[[t.get(k) for k in cols] for t in results.paired_tests])
        profile = results.profile or {}
        if profile.get("stages"):
            cols = list(profile["stages"][0])
            payload["profile"] = wandb.Table(columns=cols, data=[[s.get(k) for k in cols] for s in profile["stages"]])
        run.log(payload)
        run.summary.update(summary_metrics(results) | named_metrics(results) | profile_metrics(profile))
        log.info("W&B run logged (%s mode) under %s", mode, run_dir)


def training_environment(cfg: DictConfig, run_dir: Path) -> dict[str, str | None]:
    """The variables the finetune workers start with (None: unset). With logger.log_training, TRL's W&B
    callback logs each finetune's curves as a `finetune` run in this run's project and group, in its mode,
    under <run dir>/wandb; the worker names the run after the finetune."""
    logger = cfg.logger
    on = logger.backend == "wandb" and bool(logger.get("log_training", False))
    env: dict[str, str | None] = {TRAINING_SWITCH: "1" if on else "0"}
    if on:
        env |= {"WANDB_PROJECT": logger.project, "WANDB_ENTITY": logger.entity, "WANDB_RUN_GROUP": logger.group,
                "WANDB_MODE": wandb_mode(logger.mode), "WANDB_DIR": str(Path(run_dir).resolve()),
                "WANDB_JOB_TYPE": "finetune", "WANDB_TAGS": ",".join(logger.tags) or None,
                # Under `wandb agent` these name the agent's run: a finetune run must not take them over.
                "WANDB_RUN_ID": None, "WANDB_SWEEP_ID": None, "WANDB_RESUME": None}
    return env


@contextmanager
def training_logging(cfg: DictConfig, run_dir: Path, environ=None):
    """Within the block, spawned finetune workers see training_environment(cfg, run_dir); the variables
    are restored afterwards (in a local multirun the next job runs in this same process)."""
    environ = os.environ if environ is None else environ
    env = training_environment(cfg, run_dir)
    saved = {k: environ.get(k) for k in env}
    _set_variables(environ, env)
    try:
        yield env
    finally:
        _set_variables(environ, saved)


def _set_variables(environ, values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = str(v)
