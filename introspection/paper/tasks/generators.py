"""Seeded, deterministic builders for the generated sequence tasks (docs/method.md §2).

Each generated task has a fixed pool of train and val strings, built offline from a word list with
``random.Random(f"{task}:{GENERATOR_VERSION}")``: the same on every machine and Python >= 3.11
(string seeds are hashed with SHA-512, independent of PYTHONHASHSEED). Strings are unique across
both splits, so train and val never overlap. `load_items` then shuffles a pool with the run's seed
and takes the first n, as the paper's loader does with its fixed files.

The authors' scripts were unseeded (colors, countries, numbers) or seeded with 42 in a notebook
(animals, english words), so their exact strings cannot be rebuilt; sizes and construction rules are
theirs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from introspection.paper.tasks import wordlists

# Bump when any builder or word list changes: the generated items change with it.
GENERATOR_VERSION = "v1"


@dataclass(frozen=True)
class SequenceSpec:
    """How to build one generated task: k words from `vocabulary`, k uniform in [min_len, max_len]."""

    vocabulary: tuple[str, ...]
    min_len: int
    max_len: int
    distinct: bool  # sample without replacement within one string
    trailing_space: bool  # the paper's animals / english words strings end with a space
    n_train: int
    n_val: int


SPECS: dict[str, SequenceSpec] = {
    # 5 distinct colours; 5000 / 5000 (make_colors.py).
    "colors_long": SequenceSpec(wordlists.COLORS, 5, 5, True, False, 5000, 5000),
    # 3-6 distinct countries; 5000 / 5000 (make_countries.py).
    "countries_long": SequenceSpec(wordlists.COUNTRIES, 3, 6, True, False, 5000, 5000),
    # 7-10 animals with replacement, trailing space; 12,500 total split 80/20.
    "animals_long": SequenceSpec(wordlists.ANIMALS, 7, 10, False, True, 10000, 2500),
    # 5 random English words, trailing space; 12,500 total split 80/20.
    "english_words_long": SequenceSpec(wordlists.ENGLISH_WORDS, 5, 5, True, True, 10000, 2500),
    # 3-6 random digits joined by spaces; 5000 / 5000 (make_numbers.py).
    "numbers": SequenceSpec(tuple("0123456789"), 3, 6, False, False, 5000, 5000),
}


def build_string(spec: SequenceSpec, rng: random.Random) -> str:
    """One item string drawn with `rng`."""
    k = rng.randint(spec.min_len, spec.max_len)
    if spec.distinct:
        words = rng.sample(spec.vocabulary, k)
    else:
        words = [rng.choice(spec.vocabulary) for _ in range(k)]
    text = " ".join(words)
    return text + " " if spec.trailing_space else text


def build_pool(spec: SequenceSpec, seed: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, val) strings: n_train + n_val unique strings drawn in order from one seeded stream."""
    rng = random.Random(seed)
    wanted = spec.n_train + spec.n_val
    seen: set[str] = set()
    ordered: list[str] = []
    attempts = 0
    while len(ordered) < wanted:
        attempts += 1
        if attempts > 50 * wanted:  # a spec whose space is too small for the sizes asked for
            raise ValueError(
                f"cannot build {wanted} unique strings from a vocabulary of {len(spec.vocabulary)} "
                f"with lengths {spec.min_len}-{spec.max_len}; lower n_train/n_val"
            )
        text = build_string(spec, rng)
        if text not in seen:
            seen.add(text)
            ordered.append(text)
    return tuple(ordered[: spec.n_train]), tuple(ordered[spec.n_train :])


@cache
def _pool(task_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return build_pool(SPECS[task_name], f"{task_name}:{GENERATOR_VERSION}")


def generated_split(task_name: str, split: str) -> tuple[str, ...]:
    """The fixed pool of one split ("train" or "val") of a generated task."""
    if task_name not in SPECS:
        raise ValueError(f"no generator for task {task_name!r}; valid: {', '.join(sorted(SPECS))}")
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r} for task {task_name!r}; valid: train, val")
    train, val = _pool(task_name)
    return train if split == "train" else val
