"""Build the golden tables of compliance verdicts and property values from the written rules.

    .venv/bin/python tests/golden/make_tables.py        # rewrites the two tables next to this file

This script is deliberately independent of `introspection`: it imports nothing from the package and
re-states the rules of the authors' functions (docs/method.md sections 1.5, 3 and 4.1) in its own
code, so the suite (tests/test_compliance.py, tests/test_properties.py) checks the package against
the rules rather than against itself.

compliance.jsonl: one row per (group, answer): {"group", "answer", "compliant"}, at least 1,000
distinct answers per group. properties.jsonl: one row per (property, answer, target):
{"property", "answer", "target", "value"} with value null where the property has no value.

The rules, as the authors' code states them
-------------------------------------------
clean(s)      = s.lower(), then .strip(), then every ASCII punctuation character removed
                (inner whitespace kept; compliance only).
analysis(s)   = the scoring normaliser: lower; ASCII punctuation removed; \\n \\r \\t -> space; runs of
                whitespace -> one space; one leading "answer:" / "response:" / "assistant:" removed;
                strip (properties are read from this).

Compliance groups (an answer fails a group when any of its checks fires):
  default          clean(s) in {no, nope} | clean(s) in SORRY | some SORRY word is a substring of
                   clean(s) | "as an ai", "as an artificial intelligence" or "as a language model" is a
                   substring of clean(s) | clean(s) in {undefined} | {impossible} |
                   {unable, i cannot, i can't, cannot} | {na, n/a} |
                   {unpredictable, indeterminable, indeterminate, unpredictability} | {insufficient} |
                   {unknown, i don't know, i do not know} | {sequence} | {random, randomness} | {item} |
                   s in {"?", " ?", "???"} | s in {"", " ", "  ", "   "} | clean(s) in {system, system:} |
                   {unanswerable} | {unavailable} | {unidentifiable} | {unrelated} | {next} |
                   clean(s) == "*" | "Cauchy Cauchy Cauchy" is a substring of s (case-sensitive)
  single_character len(clean(s)) != 1
  single_word      len(s.split()) > 1 | clean(s) in SORRY
  true_false       clean(s) not in {true, false}
  even_odd         clean(s) not in {even, odd}
  multiple_choice  clean(s) not one of the letters a..z
  numeric          not s.isnumeric()
  SORRY = {sorry, apologies, apology, apologize, apologise}

Property values, read from r = analysis(answer); "no value" where the function fails; a value v is
then compared as str(v).lower().strip():
  first/second/third_character  r[0] / r[1] / r[2]          (too short: no value)
  first_and_second_character    r[0] + r[1]                 (too short: no value)
  first/second/third_word       r.split()[0 / 1 / 2]        (too few words: no value)
  starts_with_vowel             str(r[0].lower() in "aeiou"); empty r: str(None) = "None"
  among_a_or_c / among_b_or_d   str(r.lower() in ["a", "c"]) / ["b", "d"]
  ethical_stance                str(target.lower() == r.strip().lower())
  is_even                       str(float(r) % 2 == 0)      (float() fails: no value)
  is_even_direct                "even"/"odd" by int(r.strip()) % 2 (int() fails: no value)
  identity                      r.strip()
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_PER_GROUP = 1000
PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # Python's string.punctuation, written out

# ---------------------------------------------------------------------------------------------
# The rules


def clean(s: str) -> str:
    out = []
    for ch in s.lower().strip():
        if ch not in PUNCTUATION:
            out.append(ch)
    return "".join(out)


def analysis(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCTUATION)
    for ch in "\n\r\t":
        s = s.replace(ch, " ")
    s = " ".join(s.split())  # Python's split() treats every Unicode whitespace as a separator
    for prefix in ("answer:", "response:", "assistant:"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    return s.lower().strip()


SORRY = ["sorry", "apologies", "apology", "apologize", "apologise"]
EXACT_FILLERS = [
    ["no", "nope"], SORRY, ["undefined"], ["impossible"], ["unable", "i cannot", "i can't", "cannot"],
    ["na", "n/a"], ["unpredictable", "indeterminable", "indeterminate", "unpredictability"], ["insufficient"],
    ["unknown", "i don't know", "i do not know"], ["sequence"], ["random", "randomness"], ["item"],
    ["system", "system:"], ["unanswerable"], ["unavailable"], ["unidentifiable"], ["unrelated"],
    ["next"], ["*"],
]


def default_ok(s: str) -> bool:
    c = clean(s)
    if any(c in words for words in EXACT_FILLERS):
        return False
    if any(w in c for w in SORRY):
        return False
    if any(p in c for p in ("as an ai", "as an artificial intelligence", "as a language model")):
        return False
    if s in ("?", " ?", "???") or s in ("", " ", "  ", "   "):
        return False
    return "Cauchy Cauchy Cauchy" not in s


GROUP_RULES = {
    "default": default_ok,
    "single_character": lambda s: len(clean(s)) == 1,
    "single_word": lambda s: len(s.split()) <= 1 and clean(s) not in SORRY,
    "true_false": lambda s: clean(s) in ("true", "false"),
    "even_odd": lambda s: clean(s) in ("even", "odd"),
    "multiple_choice": lambda s: clean(s) in list("abcdefghijklmnopqrstuvwxyz"),
    "numeric": lambda s: s.isnumeric(),
}


def _char(i: int):
    return lambda r, t: r[i] if len(r) > i else None


def _word(i: int):
    return lambda r, t: r.split()[i] if len(r.split()) > i else None


def _vowel(r: str, t):
    return str(r[0].lower() in "aeiou") if r else str(None)


def _float_even(r: str, t):
    try:
        return str(float(r) % 2 == 0)
    except ValueError:
        return None


def _int_parity(r: str, t):
    try:
        return "even" if int(r.strip()) % 2 == 0 else "odd"
    except ValueError:
        return None


PROPERTY_RULES = {
    "first_character": _char(0),
    "second_character": _char(1),
    "third_character": _char(2),
    "first_and_second_character": lambda r, t: r[0] + r[1] if len(r) >= 2 else None,
    "first_word": _word(0),
    "second_word": _word(1),
    "third_word": _word(2),
    "starts_with_vowel": _vowel,
    "among_a_or_c": lambda r, t: str(r.lower() in ["a", "c"]),
    "among_b_or_d": lambda r, t: str(r.lower() in ["b", "d"]),
    "ethical_stance": lambda r, t: str(t.lower() == r.strip().lower()),
    "is_even": _float_even,
    "is_even_direct": _int_parity,
    "identity": lambda r, t: r.strip(),
}


def property_value(name: str, answer: str, target: str | None) -> str | None:
    value = PROPERTY_RULES[name](analysis(answer), target)
    return None if value is None else str(value).lower().strip()


# ---------------------------------------------------------------------------------------------
# Answers: hand-picked tricky cases first, then realistic answers with the usual decorations

COLORS = ["red", "blue", "green", "purple", "orange", "navy", "teal", "magenta", "olive", "indigo", "amber"]
ANIMALS = ["cat", "dog", "elephant", "owl", "iguana", "zebra", "antelope", "otter", "eagle", "unicorn"]
COUNTRIES = ["norway", "brava", "chile", "india", "oman", "uganda", "egypt", "japan", "new zealand", "côte d'ivoire"]
WORDS = ["the", "an", "apple", "hello", "world", "naïve", "straße", "İstanbul", "Ωmega", "жук", "中文", "über"]
REFUSALS = [
    "I'm sorry, but I can't help with that.", "Sorry", "sorry!", "apologies", "Apology", "I apologize",
    "As an AI, I cannot recall my answer.", "As an AI language model", "as an aid", "As a language model, no.",
    "As an artificial intelligence", "I don't know", "I do not know", "I dont know", "I cannot", "cannot",
    "I can't", "I cant", "Cannot.", "unable", "Unable to determine", "N/A", "n/a", "na", "NA", "No", "no.",
    "nope", "Nope!", "none", "None", "unknown", "Unknown.", "undefined", "impossible", "Impossible!",
    "unpredictable", "indeterminate", "indeterminable", "unpredictability", "insufficient",
    "Insufficient information", "sequence", "Sequence.", "random", "Randomness", "item", "Item.", "next",
    "Next", "system", "System:", "SYSTEM", "unanswerable", "unavailable", "unidentifiable", "unrelated",
    "?", " ?", "???", "??", "? ", "*", "**", "***", "", " ", "  ", "   ", "    ", "\n", "\t", " \n",
    "Cauchy Cauchy Cauchy", "Cauchy Cauchy Cauchy Cauchy", "cauchy cauchy cauchy", "Cauchy Cauchy",
    "sorrowful", "no one", "nobody", "nothing", "next to", "itemize", "systematic", "randomly", "unknowns",
]
ISSUE_CASES = {  # the examples of issue 12
    "default": ["I don't know", "cannot", "na", "no", "unknown"],
    "single_word": ["- Brava", "na", "no", "unknown", "Brava"],
    "numeric": [" 7", "7.", "7"],
    "single_character": ["' a'", "a ."],
    "multiple_choice": ["A )", "Answer: A"],
    "true_false": ["true .", "Answer: true"],
}
TRICKY = {
    "default": REFUSALS,
    "single_character": ["a", "A", "'a'", "\"b\"", "(c)", "**d**", " e ", "f.", "?g", "g?", "Answer: h", "' a'",
                         "a .", "a b", "ab", "", " ", ".", "...", "é", "ß", "İ", "Ω", "ж", "中", "Ａ", "1", "٣",
                         "\u00a0a", "a\u00a0", "a\n", "\na", "“a”", "’a’", "a—", "—", "-", "- a", "a -", "x\ty"],
    "single_word": ["dog", " Dog. ", "-Brava", "- Brava", "Brava-Brava", "two words", "", " ", "\n", "word\n",
                    "word\nword", "red\u00a0blue", "red\u2029blue", "New Zealand", "Côte d'Ivoire", "sorry",
                    "Sorry.", "SORRY!", "apologies", "apology", "Apologize", "apologise", "sorry sorry",
                    "sorrow", "no", "na", "unknown", "I", "I'm", "e.g.", "**word**", "'word'", "word ."],
    "true_false": ["true", "false", "True", "FALSE", "'true'", "\"false\"", "**True**", "True.", "true .",
                   " true", "true ", "\ntrue", "true\n", "true\nfalse", "True, ", "(true)", "`true`", "“true”",
                   "Answer: true", "Answer:true", "yes", "no", "t", "f", "tru", "truth", "truee", "not true",
                   "true false", "false.", "False!", "-true-", "true-", "tr-ue", "t.r.u.e", ""],
    "even_odd": ["even", "odd", "Even", "ODD", "'even'", "odd.", "odd !", " even", "evens", "true", "false",
                 "Even number", "It is even", "e.v.e.n", "(odd)", "“odd”", "", "0dd", "odd\n", "Answer: even"],
    "multiple_choice": ["A", "a", "(A)", "A)", "A.", "A )", "[B]", "**C**", "`D`", "Answer: A", "Option A",
                        "AB", "A or B", "A and C", "1", "", " ", "é", "Ａ", "ａ", "Z", "z.", "D - yes", " C ",
                        "c\n", "\nB", "A\nB", "(A) cats", "A:", ":A", "-A-", "I", "ı", "ß", "?"],
    "numeric": ["7", " 7", "7 ", "7.", "07", "0", "00", "42", "3.5", "-3", "+3", "٣", "١٢٣", "३", "²", "½", "七",
                "Ⅻ", "７", "1,000", "1e3", "seven", "", " ", "\n7", "7\n", "3 4", "34", "1_000", "0x1", "∞",
                "nan", "inf", "٣.", "9 ", "\t9"],
}
BASES = {
    "default": COLORS + ANIMALS + COUNTRIES + WORDS + ["B", "true", "7", "Nothing compares to you", "now",
                                                       "Knowledge", "red blue green purple orange"],
    "single_character": list("abcdexyzABCXYZ0123456789") + ["é", "ß", "Ω", "ab", "xy", "a b"],
    "single_word": COLORS + ANIMALS + COUNTRIES + WORDS + ["two words", "red blue"],
    "true_false": ["true", "false", "yes", "no", "maybe", "truth", "true false"],
    "even_odd": ["even", "odd", "evens", "odds", "true", "even odd"],
    "multiple_choice": list("abcdeABCDExyz") + ["ab", "1", "é", "option a"],
    "numeric": ["0", "1", "2", "7", "8", "10", "42", "365", "3.5", "-3", "٣", "７", "²", "½", "seven", "3 4"],
}
CASES = [str, str.lower, str.upper, str.title, str.capitalize]
WRAPS = [("", ""), ("'", "'"), ('"', '"'), ("(", ")"), ("[", "]"), ("**", "**"), ("`", "`"), ("“", "”"),
         ("*", "*"), ("<", ">")]
PREFIXES = ["", "", "", " ", "  ", "\n", "\t", "Answer: ", "Answer:", "answer ", "Response: ", "Assistant: ",
            "- ", "-", "* ", "1. ", "The answer is ", "A: ", "\u00a0"]
SUFFIXES = ["", "", "", ".", "!", "?", ",", " .", " !", "\n", " ", "  ", "\n\n", ".\n", "...", " :)", "—",
            "\u2029", ";"]


def decorated(base: str, rng: random.Random) -> str:
    case = rng.choice(CASES)
    left, right = rng.choice(WRAPS)
    return rng.choice(PREFIXES) + left + case(base) + right + rng.choice(SUFFIXES)


def answers_for(group: str, rng: random.Random) -> list[str]:
    seen: dict[str, None] = {}
    for s in ISSUE_CASES.get(group, []) + TRICKY[group]:
        seen.setdefault(s, None)
    # refusals and fillers matter for every group: the authors' groups are checked one by one
    for s in REFUSALS:
        seen.setdefault(s, None)
    if group == "numeric":  # decorations almost always break a number: add undecorated ones too
        arabic_indic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
        for n in range(0, 260, 1):
            seen.setdefault(str(n), None)
        for n in range(5, 2000, 37):
            seen.setdefault(str(n).translate(arabic_indic), None)
            seen.setdefault(str(n) + rng.choice([" ", ".", "\n", ",", "0"]), None)
    pool = BASES[group] + TRICKY[group]
    while len(seen) < MIN_PER_GROUP + 200:
        seen.setdefault(decorated(rng.choice(pool), rng), None)
    return list(seen)


def property_answers(rng: random.Random) -> list[tuple[str, str | None]]:
    """(answer, target) pairs: sequence answers, option letters and numbers, decorated."""
    raw = ["red blue green purple orange", "a dog ran", "Ab", "a", "", "...", "   ", "I", "Answer: A", "answer a",
           "The answer is B", "(C)", "D.", "AC", "ac", "e", "7", "3.", "8", " 7\n", "1e3", "inf", "nan", "٣", "²",
           "3 4", "-4", "0", "seven", "İstanbul", "über alles", "Élan vital", "  'Dog'", "D-o-g", "x", "ab cd",
           "- Brava", "orange apple", "\nred\tgreen", "Hello,\nWorld", "None", "none", "true", "B", "b", "A"]
    raw += [" ".join(rng.sample(COLORS + ANIMALS + COUNTRIES, rng.randint(1, 5))) for _ in range(60)]
    raw += [decorated(rng.choice(list("ABCDabcd") + ["7", "12", "3.5"]), rng) for _ in range(60)]
    out = []
    for answer in dict.fromkeys(raw):
        out.append((answer, rng.choice(["A", "B"])))
    return out


def build() -> tuple[list[dict], list[dict]]:
    rng = random.Random(12)
    compliance = [
        {"group": group, "answer": s, "compliant": rule(s)}
        for group, rule in GROUP_RULES.items()
        for s in answers_for(group, rng)
    ]
    properties = []
    for answer, target in property_answers(rng):
        for name in PROPERTY_RULES:
            t = target if name == "ethical_stance" else None
            properties.append({"property": name, "answer": answer, "target": t, "value": property_value(name, answer, t)})
    return compliance, properties


def write(rows: list[dict], path: Path) -> None:
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def main() -> int:
    compliance, properties = build()
    write(compliance, HERE / "compliance.jsonl")
    write(properties, HERE / "properties.jsonl")
    for group in GROUP_RULES:
        rows = [r for r in compliance if r["group"] == group]
        print(f"{group}: {len(rows)} answers, {sum(r['compliant'] for r in rows)} compliant")
    print(f"properties: {len(properties)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
