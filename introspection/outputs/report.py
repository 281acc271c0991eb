"""report.md and its figures, drawn only from the saved results (no model is loaded).

    python -m introspection.outputs.report RUN_DIR      # re-render RUN_DIR/report.md and RUN_DIR/plots/*.png

Every figure comes from the one tidy table of cells in results.json (the rows of matrix.csv): each
cell is (predictor, target, kind, task, property) with accuracy, CI, n, mode baseline and compliance.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from introspection.core.store import write_text_atomic
from introspection.outputs.results import Cell, PairedTest, load_results

KIND_ORDER = {"self": 0, "cross": 1, "untrained": 2, "old_behavior": 3, "new_behavior": 4}


def pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def savefig(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def headline(cells: list[Cell]) -> list[Cell]:
    return [c for c in cells if c.is_headline]


# --- figures ------------------------------------------------------------------------------------
def plot_matrix(cells: list[Cell], path: Path) -> bool:
    """Predictor x target heatmap of held-out accuracy, each cell annotated with its CI and n."""
    trained = [c for c in headline(cells) if c.kind in ("self", "cross")]
    if not trained:
        return False
    plt = pyplot()
    predictors = sorted({c.predictor for c in trained})
    targets = sorted({c.target for c in trained})
    grid = [[math.nan] * len(targets) for _ in predictors]
    fig, ax = plt.subplots(figsize=(2.6 + 2.4 * len(targets), 1.8 + 1.4 * len(predictors)))
    for c in trained:
        i, j = predictors.index(c.predictor), targets.index(c.target)
        grid[i][j] = c.accuracy
        ax.text(j, i, f"{pct(c.accuracy)}\n[{pct(c.ci_low)}, {pct(c.ci_high)}]\n"
                      f"n={c.n}, baseline {pct(c.mode_baseline)}", ha="center", va="center", fontsize=8)
    image = ax.imshow(grid, cmap="Greens", vmin=0, vmax=1)
    ax.set_xticks(range(len(targets)), [f"{t}\n(self-trained)" for t in targets])
    ax.set_yticks(range(len(predictors)), predictors)
    ax.set_xlabel("target: whose behaviour is predicted")
    ax.set_ylabel("predictor")
    ax.set_title("Held-out prediction accuracy (diagonal = self-prediction)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    savefig(fig, path)
    return True


def by_property(cells: list[Cell]) -> list[Cell]:
    """Cells of one property pooled over every task."""
    return [c for c in cells if c.pooled_over_tasks and not c.is_headline]


def plot_property_bars(cells: list[Cell], path: Path) -> bool:
    """Per target and property: self, cross and untrained accuracy with 95% CIs; baseline as a tick."""
    rows = by_property(cells)
    if not rows:
        return False
    plt = pyplot()
    targets = sorted({c.target for c in rows})
    props = sorted({c.property for c in rows})
    series = sorted({(c.kind, c.predictor) for c in rows}, key=lambda s: (KIND_ORDER.get(s[0], 9), s[1]))
    fig, axes = plt.subplots(1, len(targets), figsize=(1.5 + 2.2 * len(props) * len(targets), 3.6), squeeze=False)
    width = 0.8 / max(1, len(series))
    for ax, target in zip(axes[0], targets, strict=True):
        for k, (kind, predictor) in enumerate(series):
            xs, ys, lo, hi, base = [], [], [], [], []
            for i, prop in enumerate(props):
                c = next((c for c in rows if c.target == target and c.property == prop and c.kind == kind
                          and c.predictor == predictor), None)
                if c is None:
                    continue
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(c.accuracy)
                lo.append(max(0.0, c.accuracy - c.ci_low) if not math.isnan(c.ci_low) else 0.0)
                hi.append(max(0.0, c.ci_high - c.accuracy) if not math.isnan(c.ci_high) else 0.0)
                base.append(c.mode_baseline)
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=f"{kind}: {predictor}")
                ax.scatter(xs, base, marker="_", s=200, color="black", zorder=3)
        ax.set_xticks(range(len(props)), props, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"target {target}", fontsize=9)
        ax.set_ylabel("accuracy (black tick: mode baseline)", fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="upper right")
    savefig(fig, path)
    return True


# --- markdown -----------------------------------------------------------------------------------
def cell_table(cells: list[Cell], by: tuple[str, ...] = ()) -> list[str]:
    """Markdown rows of cells; `by` adds leading columns (task, property) for tables that break them down."""
    head = [*by, "predictor", "target", "kind", "accuracy", "95% CI", "n", "mode baseline", "compliance", "flag"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(cells, key=lambda c: (*(getattr(c, k) for k in by), c.target, KIND_ORDER.get(c.kind, 9), c.predictor)):
        lead = "".join(f"{getattr(c, k)} | " for k in by)
        out.append(f"| {lead}{c.predictor} | {c.target} | {c.kind} | {pct(c.accuracy)} | "
                   f"[{pct(c.ci_low)}, {pct(c.ci_high)}] | {c.n} | {pct(c.mode_baseline)} | "
                   f"{pct(c.compliance)} | {_flag(c)} |")
    return out


def _flag(record: Cell | PairedTest) -> str:
    """The record's flag in bold, or empty; results saved before flags existed have none."""
    return f"**{record.flag}**" if record.flag else ""


def _signed_interval(low, high) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return "n/a"
    return f"[{low:+.1%}, {high:+.1%}]"


def _tests_table(tests: list[PairedTest]) -> list[str]:
    out = ["| target | task | self | cross-predictor | cross | difference | 95% CI (paired) | bootstrap 95% CI | n | discordant (self only / cross only) | exact McNemar p | flag |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        holm = f" (Holm {t.mcnemar_p_holm:.3g})" if t.mcnemar_p_holm is not None else ""
        out.append(f"| {t.target} | {t.task} | {pct(t.self_accuracy)} | {t.cross_predictor} | {pct(t.cross_accuracy)} | "
                   f"{t.delta:+.1%} | {_signed_interval(t.ci_low, t.ci_high)} | "
                   f"{_signed_interval(t.boot_ci_low, t.boot_ci_high)} | {t.n} | {t.self_only} / {t.cross_only} | "
                   f"{t.mcnemar_p:.3g}{holm} | {_flag(t)} |")
    return out


def _flags_note() -> list[str]:
    from introspection.analysis.scoring import LOW_COMPLIANCE, NO_SIGNAL_BASELINE

    return [f"A **flag** marks a number that says nothing about introspection: *no signal* when the mode baseline "
            f"is at least {NO_SIGNAL_BASELINE:.0%} (the target behaves the same way on almost every item, so "
            f"predicting that one answer scores as well), *low compliance* when under {LOW_COMPLIANCE:.0%} of the "
            "predictor's answers are in the property's format. A flagged self-vs-cross comparison is not informative "
            "whatever its p-value.", ""]


def _seconds(x) -> str:
    return "" if x is None else f"{x:.1f}"


def _gib(x) -> str:
    return "" if x is None else f"{x:.2f}"


def _profile_section(profile: dict) -> list[str]:
    """"Where the time went": the run's total, then one row per stage in run order."""
    stages = profile.get("stages") or []
    md = ["## Where the time went", "",
          f"{profile['wall_s']:.1f} s from the store's opening to the results, {profile['stages_wall_s']:.1f} s of it "
          f"in {profile['n_stages']} stages ({profile['n_reused']} reused from the artifact store); "
          f"{profile['requests']} requests, {profile['prompt_tokens']} prompt and {profile['generated_tokens']} "
          f"generated tokens; peak memory {_gib(profile['peak_rss_gib'])} GiB RAM"
          + (f", {_gib(profile['peak_gpu_gib'])} GiB GPU" if profile.get("peak_gpu_gib") is not None else "") + ". "
          "A worker's first stage includes its process start-up (imports), its last the engine's shutdown; two "
          "stages may overlap when the two models run at once. Counters are this run's work: a reused stage has "
          "none, its wall is the lookup. Peak RAM is that of the stage's process so far.", "",
          "| stage | wall s | engine start s | requests | prompt tokens | generated tokens | rows / tokens trained "
          "| peak RAM GiB | peak GPU GiB | reused |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for st in sorted(stages, key=lambda r: r["started"]):
        trained = f"{st['rows']} / {st['trained_tokens']}" if st.get("rows") is not None else ""
        md.append(f"| {st['stage']} | {_seconds(st['wall_s'])} | {_seconds(st.get('engine_start_s'))} | "
                  f"{st['requests']} | {st['prompt_tokens']} | {st['generated_tokens']} | {trained} | "
                  f"{_gib(st.get('peak_rss_gib'))} | {_gib(st.get('peak_gpu_gib'))} | {'yes' if st['reused'] else ''} |")
    return md + [""]


def render(run_dir: Path) -> Path:
    """Write run_dir/report.md and the figures it shows from run_dir/results.json."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise ValueError(f"no results.json in {run_dir}; give the folder of a finished run")
    results = load_results(results_path)
    cells = results.cells
    plots = run_dir / "plots"
    md = [f"# Report: {results.experiment or 'experiment'}", ""]
    models = results.models or {}
    if models:
        md.append("Models: " + ", ".join(f"{k} = `{v}`" for k, v in models.items()) + ".")
    n_items = results.n_items or {}
    if n_items:
        md.append(f"Items: {n_items.get('train', '?')} train (held-in tasks), {n_items.get('test', '?')} held-out.")
    md.append(f"Non-compliant predictions: counted as **{results.noncompliant or 'wrong'}**"
              f" ({'excluded from n' if results.noncompliant == 'exclude' else 'wrong answers'}).")
    md.append("")
    if any(r.flag for r in [*cells, *results.paired_tests]):
        md += _flags_note()

    trained = [c for c in headline(cells) if c.kind in ("self", "cross")]
    if trained:
        md += ["## Self- vs cross-prediction (held-out, micro-average)", "",
               "Ground truth: the object-level behaviour of the target after self-training. Self and cross are "
               "scored on identical items. CIs: 95% Wilson score intervals; where an item is asked about under "
               "several properties, at the effective n (n over the design effect of clustering by item; the number "
               "of items when every row agrees). Paired differences: Agresti-Min interval, on the table scaled to "
               "the same effective n.", ""]
        md += cell_table(trained) + [""]
        if plot_matrix(cells, plots / "matrix.png"):
            md += ["![matrix](plots/matrix.png)", ""]
    if results.paired_tests:
        md += ["## Paired tests: self minus cross", ""] + _tests_table(results.paired_tests) + [""]
    alternative = results.alternative_treatment
    if alternative:
        md += [f"## With non-compliant predictions {'excluded' if alternative[0].get('noncompliant') == 'exclude' else 'counted as wrong'}",
               "", "The same comparison under the other treatment of non-compliant answers (docs/method.md §4.1).", ""]
        md += cell_table(alternative) + [""]
    untrained = [c for c in headline(cells) if c.kind == "untrained"]
    if untrained:
        md += ["## Before training (untrained baseline)", "",
               "Each base model predicting its own base behaviour, with no finetuning.", ""]
        md += cell_table(untrained) + [""]
    if plot_property_bars(cells, plots / "properties.png"):
        md += ["## By property", "", "![properties](plots/properties.png)", ""]
        md += cell_table(by_property(cells), by=("property",)) + [""]
    adjusted = [c for c in cells if c.is_adjusted]
    if adjusted:
        md += ["## Distribution-matched (adjusted) accuracy", "",
               "Both sides restricted to equal numbers of items per object-level answer (docs/method.md §4.4), so a "
               "collapsed, low-entropy behaviour earns no advantage. Reported beside the raw numbers above.", ""]
        md += cell_table(adjusted) + [""]
    by_task = [c for c in cells if not c.pooled_over_tasks and not c.is_adjusted]
    if by_task:
        md += ["## By task and property", "", "<details><summary>table</summary>", ""]
        md += cell_table(by_task, by=("task", "property")) + ["", "</details>", ""]
    md += results.report_section  # the experiment's own section, rendered by it (Experiment.render) at run time
    if results.sections and not results.report_section:  # written before experiments rendered their own sections
        md += [f"Sections {', '.join(results.sections)} are in results.json; this file predates the sections an "
               "experiment renders itself at run time, so they are not drawn here (rerun the experiment to draw them).", ""]
    if results.profile:
        md += _profile_section(results.profile)
    path = run_dir / "report.md"
    write_text_atomic(path, "\n".join(md))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m introspection.outputs.report RUN_DIR", file=sys.stderr)
        return 2
    try:
        path = render(Path(argv[0]))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
