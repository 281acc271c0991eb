"""The sweep's figures: each job's predictor x target matrix side by side (sweep_matrices.png), and the matrix
assembled over every model the sweep touched (sweep_matrix.png). Written by introspection/outputs/sweep.py."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_PANELS = 48  # matrices drawn in the figure; the tables always hold every job


def _panel_title(job: dict[str, Any]) -> str:
    described = " ".join(f"{k}={v}" for k, v in job["overrides"].items()) or f"job {job['job']}"
    return "\n".join(described[i:i + 40] for i in range(0, len(described), 40))


def plot_matrices(jobs: list[dict[str, Any]], path: Path) -> bool:
    """Each job's held-out accuracy, predictor x target (diagonal = self), side by side. False: nothing to draw."""
    panels = [j for j in jobs if any(c.get("kind") in ("self", "cross") for c in j.get("matrix", []))]
    if not panels:
        return False
    if len(panels) > MAX_PANELS:
        log.warning("sweep figure shows the first %d of %d jobs; the tables hold all", MAX_PANELS, len(panels))
        panels = panels[:MAX_PANELS]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols + 1, 4.4 * nrows), squeeze=False, layout="constrained")
    image = None
    for ax, job in zip(axes.flat, panels, strict=False):
        cells = [c for c in job["matrix"] if c.get("kind") in ("self", "cross")]
        named = {c["predictor"] for c in cells} | {c["target"] for c in cells}
        order = [m for m in (job.get("models") or {}).values() if m in named]  # M1, M2, ...
        order += sorted(named - set(order))
        predictors = [m for m in order if any(c["predictor"] == m for c in cells)]
        targets = [m for m in order if any(c["target"] == m for c in cells)]
        grid = [[math.nan] * len(targets) for _ in predictors]
        for c in cells:
            i, j = predictors.index(c["predictor"]), targets.index(c["target"])
            grid[i][j] = c["accuracy"]
            ax.text(j, i, f"{c['accuracy']:.1%}\n[{c['ci_low']:.1%}, {c['ci_high']:.1%}]\nn={c['n']}",
                    ha="center", va="center", fontsize=8)
        image = ax.imshow(grid, cmap="Greens", vmin=0, vmax=1)
        ax.set_xticks(range(len(targets)), targets, fontsize=8)
        ax.set_yticks(range(len(predictors)), predictors, fontsize=8)
        ax.set_xlabel("target (self-trained)", fontsize=8)
        ax.set_ylabel("predictor", fontsize=8)
        ax.set_title(_panel_title(job), fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Held-out prediction accuracy per job (diagonal = self-prediction)")
    fig.colorbar(image, ax=axes, fraction=0.02, label="accuracy")
    _save(fig, path)
    return True


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def plot_matrix(matrix: dict[str, Any], path: Path) -> bool:
    """The assembled predictor x target heatmap over every model of the sweep. False: nothing to draw."""
    if not matrix["cells"]:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = matrix["models"]
    size = 1.9 * len(models) + 2.5
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    grid = [[math.nan] * len(models) for _ in models]
    for c in matrix["cells"]:
        i, j = models.index(c["predictor"]), models.index(c["target"])
        grid[i][j] = c["accuracy"]
        text = f"{c['accuracy']:.1%}\n[{c['ci_low']:.1%}, {c['ci_high']:.1%}]\nn={c['n']}"
        text += f"\nmean of {c['ci_method'].split()[-2]} jobs" if c["ci_method"] != "job" else ""
        text += "\nflagged" if c.get("flag") else ""
        ax.text(j, i, text, ha="center", va="center", fontsize=8)
    image = ax.imshow(grid, cmap="Greens", vmin=0, vmax=1)
    ax.set_xticks(range(len(models)), models, fontsize=8, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_xlabel("target (self-trained)")
    ax.set_ylabel("predictor")
    ax.set_title("Held-out prediction accuracy over the sweep (diagonal = self; blank = not measured)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04, label="accuracy")
    _save(fig, path)
    return True
