"""Word lists for the generated sequence tasks (docs/method.md §2). Facts, not code: one text file each in
wordlists/ (whitespace-separated words; lines starting with `#` say where the list comes from).

Provenance: the vocabularies observed in the paper's released task files ({train,val}_{animals,colors,countries,
english_words}.jsonl), which the authors built from their own lists. They ship with the package so that the
product builds its data offline.
"""

from __future__ import annotations

from pathlib import Path

_FOLDER = Path(__file__).with_name("wordlists")


def _words(name: str) -> tuple[str, ...]:
    lines = (_FOLDER / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return tuple(word for line in lines if not line.startswith("#") for word in line.split())


ANIMALS = _words("animals")  # the paper's 30 animals
COLORS = _words("colors")  # its 97 distinct colours
COUNTRIES = _words("countries")  # its 104 single-word country names
ENGLISH_WORDS = _words("english_words")  # 5,000 words of its english_words_long files
