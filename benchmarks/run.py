"""`make bench`: one JSON file and a short table, every comparison measured in the same run.

    python -m benchmarks.run --out bench_results/bench.json
    python -m benchmarks.run --out b.json --models smollm2_135m,gemma3_270m --n-prompts 2048 --train-steps 50

Sections (skip any with --skip):
  inference     our answer stage vs raw vLLM LLM.chat with OUR engine settings, same prompts and sampling
                (ours/raw req/s: the overhead of the framework)
  raw-defaults  the same prompts and sampling through vLLM with ITS defaults, LLM(model=path) plus only what
                it needs to start (ours/raw-defaults req/s: whether one of our settings is slow)
  settings      only when ours is slower than vLLM's defaults: raw vLLM with our settings, each one switched
                back to vLLM's default in turn (variant/raw req/s > 1: that setting of ours is the slow one)
  one-batch     our stage with inference.batch_size = all prompts: the cost of checkpointed batches
  backends      vLLM backend vs HF backend, each at its config's defaults (vllm/hf req/s)
  finetune      our finetune stage vs raw TRL SFTTrainer, same rows and hyperparameters (ours/raw tokens/s)
  demo          the demo (`make demo`, plus --demo-overrides) from an EMPTY store (model conversion included):
                wall time, peak memory of all its processes together, its stage profile; then the same
                run again on that store (model calls: target 0). "rerun" is another name for it. Then the
                pre-flight plan of the same config at the `cpu` rates beside the run (benchmarks/plan_check.py):
                the plan's rates and the rates measured here, each stage's measured / predicted seconds.
The demo section takes as long as the demo (15-20 min on 2 CPU cores); the others ~10 min with the defaults.

On a shared machine: the run starts once the load average is low (--max-load), each measurement
starts once other processes are quiet (--quiet-share), records the share of the CPU other processes
took while it ran (other_cpu_share: 0 = the machine to itself), and a throughput disturbed by more
than --retry-share is measured again (--retries); the least disturbed attempt is kept, all are listed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from benchmarks import common
from benchmarks.table import profile_stages, table  # noqa: F401  (profile_stages: part of this module's API)

SECTIONS = ("inference", "raw-defaults", "settings", "one-batch", "backends", "finetune", "demo")
SKIP_ALIASES = {"rerun": "demo"}  # the demo section's earlier name
TARGET_RATIO = 0.95


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench_results/bench.json"), help="the JSON file to write")
    p.add_argument("--models", default="smollm2_135m",
                   help="comma list: conf/model/llm names, embedded keys or local model folders (default %(default)s)")
    p.add_argument("--n-prompts", type=int, default=256, help="object-level prompts per inference run")
    p.add_argument("--max-tokens", type=int, default=None, help="new tokens per answer (default: inference.max_tokens)")
    p.add_argument("--backend", default="vllm", choices=("vllm", "hf"), help="the engine of ours-vs-raw inference")
    p.add_argument("--versus", default="vllm,hf", help="the two backends compared (default %(default)s)")
    p.add_argument("--finetune", default="demo", help="finetune config option (default %(default)s)")
    p.add_argument("--train-steps", type=int, default=8, help="optimizer steps per finetuning run")
    p.add_argument("--train-rows", type=int, default=None, help="SFT rows (default: steps x batch size; 1 epoch)")
    p.add_argument("--train-batch-size", type=int, default=None, help="default: finetune.batch_size")
    p.add_argument("--demo-overrides", default="",
                   help="overrides of the demo runs (default: none, i.e. make demo; e.g. 'tasks=smoke' is quicker)")
    p.add_argument("--skip", default="", help=f"comma list of sections to skip: {', '.join(SECTIONS)}")
    p.add_argument("--max-load", type=float, default=1.5, help="wait until the 1-min load average is at most this")
    p.add_argument("--max-wait", type=float, default=900.0, help="seconds to wait for that (0: do not wait)")
    p.add_argument("--quiet-share", type=float, default=0.15,
                   help="before each measurement, wait until other processes use at most this share of the CPU")
    p.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for that per measurement (0: never)")
    p.add_argument("--retries", type=int, default=1,
                   help="measure a throughput again (at most this often) when other processes disturbed it")
    p.add_argument("--retry-share", type=float, default=0.10,
                   help="'disturbed': other processes took more than this share of the CPU during the measurement")
    p.add_argument("--rss-interval", type=float, default=0.5, help="seconds between RSS samples")
    p.add_argument("--pss-interval", type=float, default=10.0,
                   help="seconds between PSS samples (each costs the kernel ~0.25 s per GB-sized process)")
    p.add_argument("--work-dir", type=Path, default=None, help="where the scratch stores go (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the scratch stores and logs")
    args = p.parse_args(argv)
    args.skip = {SKIP_ALIASES.get(s.strip(), s.strip()) for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SECTIONS)
    if unknown:
        p.error(f"unknown --skip {', '.join(sorted(unknown))}; valid: {', '.join(SECTIONS + tuple(SKIP_ALIASES))}")
    args.versus = [b.strip() for b in args.versus.split(",")]
    if len(args.versus) != 2 or not set(args.versus) <= {"vllm", "hf"}:
        p.error("--versus takes two backends, e.g. vllm,hf")
    if min(args.n_prompts, args.train_steps) < 1:
        p.error("--n-prompts and --train-steps must be >= 1")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.errors: dict[str, str] = {}  # failed parts of a section that still has numbers
        self._stage_runs: dict[tuple, dict] = {}  # (model, backend, batch size) -> our stage's measurement
        self._requests: list | None = None

    def requests(self) -> list:
        if self._requests is None:
            from benchmarks.inference import bench_requests

            self._requests = bench_requests(self.args.n_prompts, self.work)
        return self._requests

    def inference_cfg(self, backend: str, batch_size: int | None = None) -> dict:
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(common.compose_config([f"inference={backend}"]).inference, resolve=True)
        if self.args.max_tokens is not None:
            cfg["max_tokens"] = self.args.max_tokens
        if batch_size is not None:
            cfg["batch_size"] = batch_size
        return cfg

    def sampling(self, cfg: dict):
        from omegaconf import OmegaConf

        from introspection.stages.answers import sampling_for

        return sampling_for(OmegaConf.create(cfg), hypothetical=False)

    def ours(self, entry: dict, backend: str, batch_size: int | None = None) -> dict:
        from benchmarks.inference import measure_ours

        cfg = self.inference_cfg(backend, batch_size)
        key = (entry["name"], backend, cfg["batch_size"])
        if key not in self._stage_runs:
            name = f"ours-{entry['name']}-{backend}-{cfg['batch_size']}"
            self._stage_runs[key] = self.measured(
                f"{entry['name']}: our inference stage, {backend}, batch_size {cfg['batch_size']}",
                lambda: measure_ours(self.work, name, entry, self.requests(), self.sampling(cfg), cfg,
                                     self.args.rss_interval))
        return self._stage_runs[key]

    def measured(self, what: str, fn) -> dict:
        """fn() -> one measurement, taken again (up to --retries times) while other processes took more than
        --retry-share of the CPU during it. The least disturbed attempt is kept; every attempt is listed."""
        attempts: list[dict] = []
        while True:
            again = f" (again: others took {attempts[-1]['other_cpu_share']:.0%} of the CPU)" if attempts else ""
            say(what + again)
            attempts.append(fn())
            share = attempts[-1].get("other_cpu_share")
            if share is None or share <= self.args.retry_share or len(attempts) > self.args.retries:
                break
        best = min(attempts, key=lambda r: r.get("other_cpu_share") or 0.0)
        if len(attempts) > 1:
            keys = ("other_cpu_share", "rps_steady", "rps_e2e", "tokens_per_second", "e2e_seconds")
            best = {**best, "attempts": [{k: r[k] for k in keys if k in r} for r in attempts]}
        return best

    # --- sections ---------------------------------------------------------------------------------
    def inference(self, entry: dict) -> dict:
        from benchmarks.inference import measure_raw, measure_raw_defaults

        backend = self.args.backend
        ours = self.ours(entry, backend)
        cfg = self.inference_cfg(backend)
        model = common.model_ref(entry, common.fresh_store(self.work, f"raw-{entry['name']}-{backend}"))
        raw = self.measured(f"{entry['name']}: raw {backend}, our engine settings", lambda: measure_raw(
            backend, entry, model, self.requests(), self.sampling(cfg), cfg, self.args.rss_interval))
        defaults = None
        if backend == "vllm" and "raw-defaults" not in self.args.skip:
            try:
                defaults = self.measured(f"{entry['name']}: raw vllm with its defaults", lambda: measure_raw_defaults(
                    entry, model, self.requests(), self.sampling(cfg), cfg, self.args.rss_interval))
            except Exception as e:  # noqa: BLE001 - ours and raw keep their numbers
                traceback.print_exc()
                self.errors[f"raw-defaults:{entry['name']}"] = f"{type(e).__name__}: {e}"
        out = inference_result(entry["name"], backend, asdict(self.sampling(cfg)), ours, raw, defaults)
        if out["meets_defaults_target"] is False and "settings" not in self.args.skip:
            out["settings"] = self.settings(entry, model, cfg, raw)
        if "one-batch" not in self.args.skip and len(self.requests()) > cfg["batch_size"]:
            one = self.ours(entry, backend, batch_size=len(self.requests()))
            out["ours_one_batch"] = one
            out["ratio_one_batch_steady"] = common.ratio(one["rps_steady"], raw["rps_steady"])
            out["ratio_batched_vs_one_batch_steady"] = common.ratio(ours["rps_steady"], one["rps_steady"])
        return out

    def settings(self, entry: dict, model, cfg: dict, raw: dict) -> dict:
        """Which of our engine settings makes ours slower than vLLM's defaults: raw with our settings but one."""
        from benchmarks.inference import SETTING_VARIANTS, measure_raw

        out = {}
        for variant, what in SETTING_VARIANTS.items():
            try:
                run = self.measured(f"{entry['name']}: raw vllm, our settings but {what}", lambda v=variant: measure_raw(
                    "vllm", entry, model, self.requests(), self.sampling(cfg), cfg, self.args.rss_interval, variant=v))
            except Exception as e:  # noqa: BLE001 - the other variants still run
                traceback.print_exc()
                self.errors[f"settings:{entry['name']}:{variant}"] = f"{type(e).__name__}: {e}"
                continue
            out[variant] = setting_result(what, run, raw)
        return out

    def backends(self, entry: dict) -> dict:
        a, b = self.args.versus
        runs = {a: self.ours(entry, a), b: self.ours(entry, b)} if a != b else {a: self.ours(entry, a)}
        ra, rb = runs[a], runs[b]
        return {"model": entry["name"], "compared": f"{a}/{b}", a: ra, **({b: rb} if a != b else {}),
                "ratio_steady": common.ratio(ra["rps_steady"], rb["rps_steady"]),
                "ratio_e2e": common.ratio(ra["rps_e2e"], rb["rps_e2e"])}

    def finetune(self, entry: dict) -> dict:
        from omegaconf import OmegaConf

        from benchmarks.finetune import bench_rows, measure_ours, measure_raw
        from introspection.stages.finetune_settings import finetune_settings

        cfg = OmegaConf.to_container(common.compose_config([f"finetune={self.args.finetune}"]).finetune, resolve=True)
        cfg = finetune_settings(cfg, entry)  # this model's rate, batch per device, checkpointing, strategy
        if self.args.train_batch_size is not None:
            cfg["batch_size"] = self.args.train_batch_size
        per_step = cfg["batch_size"] * cfg["gradient_accumulation_steps"]
        n_rows = self.args.train_rows or self.args.train_steps * per_step
        # epochs so that training runs --train-steps optimizer steps over n_rows rows
        cfg["epochs"] = self.args.train_steps / -(-n_rows // per_step)
        rows = bench_rows(n_rows, self.work)
        ours = self.measured(f"{entry['name']}: our finetune stage ({n_rows} rows, {self.args.train_steps} steps)",
                             lambda: measure_ours(self.work, entry, rows, cfg, self.args.rss_interval))
        model = common.model_ref(entry, common.fresh_store(self.work, f"raw-finetune-{entry['name']}"))
        raw = self.measured(f"{entry['name']}: raw TRL SFTTrainer",
                            lambda: measure_raw(self.work, entry, model, rows, cfg, self.args.rss_interval))
        out = {"model": entry["name"], "finetune": cfg, "n_rows": n_rows, "ours": ours, "raw": raw,
               "ratio_tokens_per_second": common.ratio(ours["tokens_per_second"], raw["tokens_per_second"]),
               "ratio_e2e": common.ratio(ours["examples_per_second_e2e"], raw["examples_per_second_e2e"]),
               "target": TARGET_RATIO}
        out["meets_target"] = out["ratio_tokens_per_second"] is not None and out["ratio_tokens_per_second"] >= TARGET_RATIO
        return out

    def demo(self) -> dict:
        from benchmarks.demo import measure

        overrides = shlex.split(self.args.demo_overrides)
        say(f"the demo from an empty store, then again on it: {' '.join(overrides) or '(make demo)'}")
        return measure(self.work, overrides, self.args.rss_interval)


def setting_result(what: str, run: dict, raw: dict) -> dict:
    """One setting back at vLLM's default: its rate against raw with all our settings (> 1: ours is slower)."""
    if run.get("unchanged"):
        return {"what": what, "unchanged": True, "note": run["what"]}
    return {"what": what, "run": run, "ratio_vs_ours_steady": common.ratio(run["rps_steady"], raw["rps_steady"]),
            "ratio_vs_ours_e2e": common.ratio(run["rps_e2e"], raw["rps_e2e"])}


def inference_result(model: str, backend: str, sampling: dict, ours: dict, raw: dict,
                     defaults: dict | None) -> dict:
    """The inference section's record: ours vs raw with our engine settings (the framework's overhead) and
    ours vs raw with vLLM's defaults (whether one of our settings is slow), each a ratio of requests/s."""
    from benchmarks.inference import agreement

    for side in (ours, raw, defaults):
        if side is not None and side.get("texts"):
            side["mean_answer_chars"] = round(sum(map(len, side["texts"])) / len(side["texts"]), 1)
    out = {"model": model, "backend": backend, "n_prompts": ours["n"], "sampling": sampling, "ours": ours, "raw": raw,
           "ratio_steady": common.ratio(ours["rps_steady"], raw["rps_steady"]),
           "ratio_e2e": common.ratio(ours["rps_e2e"], raw["rps_e2e"]),
           "identical_answers": agreement(ours["texts"], raw["texts"]), "target": TARGET_RATIO}
    out["meets_target"] = out["ratio_steady"] is not None and out["ratio_steady"] >= TARGET_RATIO
    out["raw_defaults"] = defaults
    out["ratio_defaults_steady"] = common.ratio(ours["rps_steady"], defaults["rps_steady"]) if defaults else None
    out["ratio_defaults_e2e"] = common.ratio(ours["rps_e2e"], defaults["rps_e2e"]) if defaults else None
    out["identical_answers_defaults"] = agreement(ours["texts"], defaults["texts"]) if defaults else None
    out["meets_defaults_target"] = (None if out["ratio_defaults_steady"] is None
                                    else out["ratio_defaults_steady"] >= TARGET_RATIO)
    return out


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message} (load {common.load1()})", flush=True)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """Every section not skipped; a failing section is recorded with its error and the others still run."""
    from introspection.core.config import default_cache_dir
    from introspection.core.preloaded_start import START_VARIABLE
    from introspection.core.store import write_json_atomic

    # One warm compiler cache for ours and raw alike (the demo's); a fresh store would otherwise be cold.
    # The demo section starts without it (common.BENCH_ENV_DEFAULTS), as a fresh clone does.
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(default_cache_dir() / "torchinductor")
        common.BENCH_ENV_DEFAULTS.add("TORCHINDUCTOR_CACHE_DIR")
    # Ours against raw: each in a process started afresh, paying its own imports (as every worker does on a GPU
    # machine). On a CPU machine the product's workers fork from a preloaded parent (introspection/core/
    # preloaded_start.py); the demo section runs without this setting, as users get it.
    if START_VARIABLE not in os.environ:
        os.environ[START_VARIABLE] = "spawn"  # removed again at the end (a caller's later workers keep their own)
        common.BENCH_ENV_DEFAULTS.add(START_VARIABLE)
    os.environ.setdefault("WANDB_SILENT", "true")
    common.QUIET.update(max_share=args.quiet_share, max_wait=args.quiet_wait)
    common.PSS_INTERVAL["seconds"] = args.pss_interval
    started = time.time()
    report: dict = {"benchmark": "introspection", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "command": " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)]),
                    "settings": {k: sorted(v) if isinstance(v, set) else (str(v) if isinstance(v, Path) else v)
                                 for k, v in vars(args).items()},
                    "environment": common.environment(),
                    "load": common.wait_for_quiet(args.max_load, args.max_wait),
                    "inference": [], "backends": [], "finetune": [], "demo": None, "errors": {}}
    base = args.work_dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="introspection-bench-", dir=base))
    bench = Bench(args, work)

    def section(name: str, fn, *a) -> None:
        if name in args.skip:
            return
        try:
            result = fn(*a)
            if isinstance(report[name], list):
                report[name].append(result)
            else:
                report[name] = result
        except Exception as e:  # noqa: BLE001 - one failed section must not lose the others' numbers
            traceback.print_exc()
            report["errors"][name if not a else f"{name}:{a[0]['name']}"] = f"{type(e).__name__}: {e}"
        finally:
            report["errors"].update(bench.errors)
            report["wall_seconds"] = round(time.time() - started, 1)
            write_json_atomic(args.out, _public(report))  # partial results survive an interruption

    try:
        entries = [common.model_entry(m.strip()) for m in args.models.split(",") if m.strip()]
        for entry in entries:
            for name in ("inference", "backends", "finetune"):
                section(name, getattr(bench, name), entry)
        section("demo", bench.demo)
    finally:
        if args.keep:
            report["work_dir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if START_VARIABLE in common.BENCH_ENV_DEFAULTS:
            os.environ.pop(START_VARIABLE, None)
    report["load"]["load1_at_end"] = common.load1()
    report["wall_seconds"] = round(time.time() - started, 1)
    write_json_atomic(args.out, _public(report))
    return _public(report)


def _public(report: dict) -> dict:
    """The report without the per-prompt answer texts (kept only to compare ours and raw)."""
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k != "texts"}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    return clean(report)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args, argv)
    print()
    print(table(report))
    print(f"\nwritten to {args.out}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
