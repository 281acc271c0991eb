"""One table for a whole sweep, and the W&B group that ties its jobs together.

After `python -m introspection.main -m ...` every job has written `<sweep dir>/<job>/results.json`,
or, when it failed, its one-line error to `<sweep dir>/<job>/error.txt`. The Hydra callback `SweepTable`
(registered in conf/config.yaml) runs on the submitting machine when the multirun ends and gathers them into
    <sweep dir>/sweep_results.csv   one row per (job, matrix cell), the job's overrides as columns; a failed
                                    job also has its error line in the `error` column (one row if it has no cells)
    <sweep dir>/sweep_results.json  the same rows, one record per job (failed and missing ones included),
                                    and the assembled matrix
    <sweep dir>/sweep_matrices.png  each job's predictor x target matrix, side by side
    <sweep dir>/sweep_matrix.csv    one predictor x target matrix over every model the sweep touched
    <sweep dir>/sweep_matrix.png    its heatmap
and, when the logger is W&B, logs them as an `aggregate` run in the sweep's group. When a job failed it
prints `error: N of M jobs failed; see <sweep_results.csv>` and the multirun exits with code 2. Jobs that
died outside Hydra (killed for memory or time) reach the same path through the project's submitit
launchers (hydra_plugins/introspection_launcher), since Hydra skips this callback after such a job.
If the submitting process was lost, gather by hand: `python -m introspection.outputs.sweep <sweep dir>`.

Every job of a multirun logs to the W&B group named after its sweep: `logger.group` defaults to
`${sweep_group:}`, resolved inside the job. (A callback's `on_job_start` cannot set it: Hydra hands the
task a copy of the config made before that hook runs.)
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import introspection.core.config  # noqa: F401  (registers ${sweep_group:}, ${max:}, ${mul:} in jobs too)
from introspection.core.errors import JOB_ERROR_FILE as ERROR_FILE  # a failed job's one line (errors.report_job_error)
from introspection.core.hydra_job import job_overrides, parse_overrides, sweep_group, sweep_name  # noqa: F401  (this module's API too)
from introspection.outputs.results import NewerSchema, load_results
from introspection.outputs.sweep_plots import plot_matrices, plot_matrix

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"  # what an experiment.stop_after=plan job writes instead of results.json (introspection.preflight.plan)

CELL_COLUMNS = ["predictor", "target", "kind", "accuracy", "ci_low", "ci_high", "n", "mode_baseline", "compliance",
                "flag"]
MATRIX_COLUMNS = ["predictor", "target", "kind", "accuracy", "ci_low", "ci_high", "n", "jobs", "ci_method", "flag"]
OUTPUTS = ("sweep_results.csv", "sweep_results.json", "sweep_matrices.png", "sweep_matrix.csv", "sweep_matrix.png")
FAILED_EXIT_CODE = 2  # as for a single run that fails on bad input


# --------------------------------------------------------------------------------------------------
# Gathering


def _job_sort_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job folders of a sweep: those holding results.json, error.txt or Hydra's .hydra/ record."""
    found = {p.parent for p in sweep_dir.rglob("results.json")}
    found |= {p.parent for p in sweep_dir.rglob(ERROR_FILE)}
    found |= {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    jobs = [d for d in found if ".submitit" not in d.relative_to(sweep_dir).parts]
    return sorted(jobs, key=lambda d: _job_sort_key(d.relative_to(sweep_dir)))


def _read_overrides(job_dir: Path) -> dict[str, str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    return parse_overrides([str(o) for o in OmegaConf.load(path)])


def _read_error(job_dir: Path) -> str | None:
    """The job's one-line error, or None when it wrote none."""
    try:
        text = (job_dir / ERROR_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or "failed (empty error.txt)"


def read_job(job_dir: Path, rel: str) -> dict[str, Any]:
    """One job's record: status ok | planned | failed | missing, its overrides, error, models, matrix, paired
    tests. `planned`: an experiment.stop_after=plan job, which writes plan.json and no results."""
    job: dict[str, Any] = {"job": rel, "overrides": _read_overrides(job_dir), "status": "ok"}
    error = _read_error(job_dir)
    try:
        results = load_results(job_dir / "results.json")
    except FileNotFoundError:
        job["status"] = "planned" if (job_dir / PLAN_FILE).is_file() else "missing"
    except NewerSchema:
        raise  # this code cannot read the job's results: the whole table would be wrong
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not results
        error = error or f"results.json unreadable: {e}"
    else:
        job |= {"models": results.models or {}, "matrix": [c.to_dict() for c in results.matrix],
                "paired_tests": [t.to_dict() for t in results.paired_tests]}
    if error is not None:  # also when results.json exists: the job failed after writing it (e.g. in W&B)
        job |= {"status": "failed", "error": error}
    return job


def add_failures(sweep_dir: Path, jobs: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    """Mark the jobs a launcher saw fail ({"job", "overrides", "error"}; no error.txt: the job died outside
    Hydra, e.g. killed for memory or time) and give their folders the error.txt they lack, so a later
    gather by hand says the same; a job that left no folder becomes a record of its own."""
    from introspection.core.store import write_text_atomic

    for failure in failures:
        overrides = failure["overrides"]
        job = next((j for j in jobs if j["overrides"] == overrides), None)
        if job is None:
            jobs.append({"job": failure["job"], "overrides": overrides, "status": "failed", "error": failure["error"]})
        elif job["status"] != "failed":
            job |= {"status": "failed", "error": failure["error"]}
            try:
                write_text_atomic(sweep_dir / job["job"] / ERROR_FILE, failure["error"] + "\n")
            except OSError as e:
                log.warning("could not write %s for job %s: %s", ERROR_FILE, job["job"], e)


def gather(sweep_dir: str | Path, failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read every job of a sweep folder into {"sweep", "sweep_dir", "jobs", "rows", "columns", "matrix"}."""
    sweep_dir = Path(sweep_dir)
    jobs = [read_job(d, d.relative_to(sweep_dir).as_posix()) for d in find_jobs(sweep_dir)]
    add_failures(sweep_dir, jobs, failures or [])
    rows = []
    for job in jobs:
        models = job.get("models") or {}
        error = {"error": job["error"]} if job["status"] == "failed" else {}
        cells = job.get("matrix") or ([{}] if error else [])  # a failed job without cells: one row with its error
        for cell in cells:
            rows.append({"job": job["job"], **job["overrides"], "m1": models.get("m1"), "m2": models.get("m2"),
                         **cell, **error})
    keys = sorted({k for j in jobs for k in j["overrides"]})
    extra = sorted({k for r in rows for k in r} - {"job", "m1", "m2", "error", *keys, *CELL_COLUMNS})
    columns = ["job", *keys, "m1", "m2", *CELL_COLUMNS, *extra, "error"]
    return {"sweep": sweep_name(sweep_dir), "sweep_dir": str(sweep_dir), "jobs": jobs, "rows": rows,
            "columns": columns, "matrix": assemble_matrix(jobs)}


# --------------------------------------------------------------------------------------------------
# One matrix over every model of the sweep


def sweep_models(jobs: list[dict[str, Any]]) -> list[str]:
    """Every model the sweep's finished jobs touched, in order of first appearance (M1, M2 of each job)."""
    order: list[str] = []
    for job in jobs:
        names = [*(job.get("models") or {}).values()]
        names += [c[k] for c in job.get("matrix", []) if c.get("kind") in ("self", "cross") for k in ("predictor", "target")]
        for name in names:
            if isinstance(name, str) and name not in order:
                order.append(name)
    return order


def _combine(entries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One matrix cell from the jobs that measured it. Identical measurements (the same model and items in
    two pairs) count once. One measurement keeps its own CI; k > 1 different ones (replicate seeds, other
    settings) give their mean with a 95% t-interval across the k jobs (df k-1) and n summed."""
    from scipy import stats

    distinct: dict[tuple, dict[str, Any]] = {}
    for _, c in entries:
        distinct.setdefault((c["accuracy"], c["n"], c["ci_low"], c["ci_high"]), c)
    cells = list(distinct.values())
    flags = sorted({str(c["flag"]) for _, c in entries if c.get("flag")})
    out = {"jobs": " ".join(sorted({job for job, _ in entries}, key=lambda j: _job_sort_key(Path(j)))),
           "flag": "; ".join(flags) or None}
    if len(cells) == 1:
        c = cells[0]
        return out | {"accuracy": c["accuracy"], "ci_low": c["ci_low"], "ci_high": c["ci_high"], "n": c["n"],
                      "ci_method": "job"}
    values = [float(c["accuracy"]) for c in cells]
    k = len(values)
    mean = sum(values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = float(stats.t.ppf(0.975, k - 1)) * sd / math.sqrt(k)
    return out | {"accuracy": mean, "ci_low": max(0.0, mean - half), "ci_high": min(1.0, mean + half),
                  "n": sum(int(c["n"]) for c in cells), "ci_method": f"t across {k} jobs"}


def assemble_matrix(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """{"models": [...], "cells": [...]}: held-out accuracy for every (predictor, target) any job measured."""
    measured: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for job in jobs:
        for c in job.get("matrix", []):
            if c.get("kind") in ("self", "cross") and c.get("accuracy") is not None:
                measured.setdefault((c["predictor"], c["target"]), []).append((job["job"], c))
    models = sweep_models(jobs)
    cells = [{"predictor": p, "target": t, "kind": "self" if p == t else "cross", **_combine(measured[(p, t)])}
             for t in models for p in models if (p, t) in measured]
    return {"models": models, "cells": cells}


def write_tables(table: dict[str, Any], sweep_dir: Path) -> None:
    from introspection.core.store import write_json_atomic, write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table["columns"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table["rows"])
    write_text_atomic(sweep_dir / "sweep_results.csv", buf.getvalue())
    write_json_atomic(sweep_dir / "sweep_results.json", table)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MATRIX_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table["matrix"]["cells"])
    write_text_atomic(sweep_dir / "sweep_matrix.csv", buf.getvalue())


def _wandb_table(columns: list[str], rows: list[dict[str, Any]]):
    import wandb

    return wandb.Table(columns=columns, data=[[row.get(k) for k in columns] for row in rows])


def counts(table: dict[str, Any]) -> dict[str, int]:
    statuses = [j["status"] for j in table["jobs"]]
    return {"jobs": len(statuses), "jobs_with_results": sum(1 for j in table["jobs"] if "matrix" in j),
            "jobs_failed": statuses.count("failed"), "jobs_missing": statuses.count("missing"),
            "jobs_planned": statuses.count("planned")}


def log_to_wandb(table: dict[str, Any], logger_cfg: DictConfig, sweep_dir: Path) -> None:
    """The sweep as one `aggregate` run in its W&B group: the sweep table, the assembled matrix (table,
    heatmap, and a summary key per cell), the per-job figure, and the job counts."""
    import wandb

    from introspection.outputs.run_outputs import start_wandb_run, wandb_mode

    mode = wandb_mode(logger_cfg.mode)
    group = logger_cfg.get("group") or table["sweep"]
    matrix = table["matrix"]
    config = {"sweep_dir": str(sweep_dir), "jobs": len(table["jobs"]), "models": matrix["models"]}
    with start_wandb_run(wandb, sweep_dir, project=logger_cfg.project, entity=logger_cfg.entity, group=group,
                         job_type="aggregate", name=f"{group}/aggregate", tags=list(logger_cfg.tags),
                         dir=str(sweep_dir), mode=mode, config=config, settings=wandb.Settings(silent=True)) as run:
        payload: dict[str, Any] = {"sweep_results": _wandb_table(table["columns"], table["rows"]),
                                   "sweep_matrix": _wandb_table(MATRIX_COLUMNS, matrix["cells"])}
        for name in ("sweep_matrices", "sweep_matrix"):
            figure = sweep_dir / f"{name}.png"
            if figure.is_file():
                payload[f"{name}_heatmap" if name == "sweep_matrix" else name] = wandb.Image(str(figure))
        run.log(payload)
        summary: dict[str, Any] = dict(counts(table))
        for c in matrix["cells"]:
            prefix = f"matrix/{c['predictor']}->{c['target']}"
            summary |= {f"{prefix}/{k}": c[k] for k in ("accuracy", "ci_low", "ci_high", "n")}
        run.summary.update(summary)
    log.info("sweep %s: aggregate W&B run logged (%s mode, group %s)", table["sweep"], mode, group)


def failure_line(table: dict[str, Any], sweep_dir: Path) -> str | None:
    """`error: N of M jobs failed; see <sweep_results.csv>`, or None when no job failed."""
    n = counts(table)
    if not n["jobs_failed"]:
        return None
    return f"error: {n['jobs_failed']} of {n['jobs']} jobs failed; see {sweep_dir / 'sweep_results.csv'}"


def aggregate(sweep_dir: str | Path, logger_cfg: DictConfig | None = None,
              failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Gather a sweep folder and write its tables and figures (and the W&B aggregate run)."""
    sweep_dir = Path(sweep_dir)
    table = gather(sweep_dir, failures)
    write_tables(table, sweep_dir)
    plot_matrices(table["jobs"], sweep_dir / "sweep_matrices.png")
    plot_matrix(table["matrix"], sweep_dir / "sweep_matrix.png")
    log.info("sweep %s: %d jobs, %d rows, %d models -> %s/sweep_results.csv", table["sweep"], len(table["jobs"]),
             len(table["rows"]), len(table["matrix"]["models"]), sweep_dir)
    missing = [j["job"] for j in table["jobs"] if j["status"] == "missing"]
    if missing:
        log.warning("sweep %s: neither results.json nor error.txt from job(s) %s", table["sweep"], ", ".join(missing))
    if logger_cfg is not None and logger_cfg.get("backend") == "wandb":
        try:
            log_to_wandb(table, logger_cfg, sweep_dir)
        except Exception as e:  # the files above are the record; W&B is a view of them
            log.warning("sweep table not logged to W&B: %s", e)
    return table


def aggregate_sweep(config: DictConfig, failures: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Aggregate the sweep of a composed multirun config; a failure to gather is logged (None), never raised."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    try:
        return aggregate(sweep_dir, config.get("logger"), failures)
    except NewerSchema as e:  # one line: a job's results.json is newer than this code
        log.error("gathering the sweep failed: %s", e)
    except Exception:
        log.exception("gathering the sweep failed; retry with: python -m introspection.outputs.sweep %s", sweep_dir)


def end_sweep(config: DictConfig, failures: list[dict[str, Any]] | None = None) -> None:
    """Aggregate; when a job failed, print the one-line summary and exit with code 2."""
    table = aggregate_sweep(config, failures)
    line = failure_line(table, Path(str(config.hydra.sweep.dir))) if table is not None else None
    if line is None and failures:  # the table could not be gathered: the launcher's count still stands
        line = f"error: {len(failures)} job(s) failed; see the log above"
    if line is None:
        return
    print(line, file=sys.stderr, flush=True)
    if failures and os.environ.get("HYDRA_FULL_ERROR") == "1":
        return  # the launcher hands the failed job back to Hydra, which raises it with its traceback
    raise SystemExit(FAILED_EXIT_CODE)  # a BaseException: Hydra's callback guard lets it through


def launcher_failures(returns: list, overrides_per_job: list, initial_job_idx: int) -> list[dict[str, Any]]:
    """The failed JobReturns of a launcher's batch as failure records (for end_sweep)."""
    from hydra.core.utils import JobStatus

    from introspection.core.errors import one_line

    return [{"job": str(initial_job_idx + i), "overrides": parse_overrides(list(overrides)),
             "error": one_line(ret._return_value) if isinstance(ret._return_value, BaseException)
             else "failed without an error message"}
            for i, (ret, overrides) in enumerate(zip(returns, overrides_per_job, strict=True))
            if ret.status == JobStatus.FAILED]


class SweepTable(Callback):
    """Hydra callback: on_multirun_end gathers the sweep's results (runs on the submitting machine) and
    exits with code 2 when a job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        end_sweep(config)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m introspection.outputs.sweep <sweep dir>   (writes " + ", ".join(OUTPUTS) + ")")
        return 2
    sweep_dir = Path(argv[0])
    if not sweep_dir.is_dir():
        print(f"error: sweep folder {sweep_dir} does not exist", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        table = aggregate(sweep_dir)
    except NewerSchema as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(table['jobs'])} jobs, {len(table['rows'])} rows: " + ", ".join(str(sweep_dir / o) for o in OUTPUTS))
    line = failure_line(table, sweep_dir)
    if line is not None:
        print(line, file=sys.stderr)
        return FAILED_EXIT_CODE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
