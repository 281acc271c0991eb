"""The paper's split sizes per task, and the tasks whose source holds fewer items than the paper's split.

Sizes are the rows of the authors' `{train,val}_<task>.jsonl` files (docs/method.md §2, "Sizes of the
authors' files"); `tasks=all` answers every item of these splits. A source with fewer rows (another
data_dir, a hub dataset cut differently) is reported in one line per split by the plan and at the start of a
run, never capped silently.
"""

from __future__ import annotations

# task -> (train rows, val rows); None: the split is not available (the authors' MMLU train file is missing).
PAPER_SPLITS: dict[str, tuple[int | None, int]] = {
    "wikipedia_long": (3659, 915),
    "colors_long": (5000, 5000),
    "countries_long": (5000, 5000),
    "power_seeking": (494, 493),
    "wealth_seeking": (494, 493),
    "arc_challenge_non_cot": (1833, 458),
    "numbers": (5000, 5000),
    "animals_long": (10000, 2500),
    "english_words_long": (10000, 2500),
    "stories_sentences": (3999, 3006),
    "mmlu_non_cot": (None, 2808),
    "myopic_reward": (374, 376),
    "survival_instinct": (466, 465),
}
# The paper's training rows per (task, property): "30k samples" over ~30 (task, property) blocks, i.e.
# about 1,000 each; blocks of the ~494-row ethical tasks hold their whole split (docs/method.md §5.1).
PAPER_ROWS_PER_PROPERTY = 1000


def paper_split_size(task: str, split: str) -> int | None:
    """Rows of the paper's split ("train" or "val") of a task; None when the paper has no such split here."""
    sizes = PAPER_SPLITS.get(task)
    if sizes is None:
        return None
    return sizes[0] if split == "train" else sizes[1]


def shortfall(task: str, split: str, available: int, asked: int | None) -> str | None:
    """One line when a task's source holds fewer items than were asked for and than the paper's split has;
    None when the run gets what it asked for, or the whole split of the paper's size."""
    if asked is None or available >= asked:
        return None
    paper = paper_split_size(task, split)
    if paper is not None and available >= paper:
        return None  # the whole split, as large as the paper's: what a size above it asks for
    theirs = f"; the paper's split has {paper}" if paper is not None else ""
    return f"task {task} split {split}: {available} items in its source, {asked} asked for{theirs}"


def short_of_paper(tasks_cfg, train_items: list, test_items: list) -> list[str]:
    """One line per (task, split) of a plan whose source held fewer items than asked and than the paper's split."""
    lines = []
    for names, split, items, asked in ((tasks_cfg.train_tasks, "train", train_items, tasks_cfg.n_train_items),
                                       (tasks_cfg.test_tasks, "val", test_items, tasks_cfg.n_test_items)):
        for task in names:
            line = shortfall(task, split, sum(1 for it in items if it.task == task), asked)
            if line:
                lines.append(line)
    return lines
