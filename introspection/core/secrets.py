"""Credentials never reach a file the run writes: one rule for every saved config, log line and W&B run.

The rule. A config key looks like a credential when its name, split into words at `_`, `-`, `.` and at
lower-to-upper case changes (`apiKey` -> api, key), ends with one of the words
    token, key, apikey, secret, secrets, password, passwd, credential, credentials
or holds `secret`, `password` or `passwd` anywhere (`client_secret_file`). The special-token settings of
tokenizers (`pad_token`, `eos_token`, ...) are text a model reads, and rates (`chars_per_token`) are
numbers: neither is a credential, both are kept.
So `hf_token`, `api_key`, `WANDB_API_KEY`, `apiKey`, `Password` and `client_secret` are secret keys;
`max_tokens`, `tokenizer`, `keys` and `chars_per_token` are not.

Under a secret key every string and integer is replaced by `<redacted>` (a token given on the command line
may parse as an integer); booleans, floats and null are kept (`chars_per_token: 4.0`). An override whose
key is secret (`+logger.api_key=XYZ`, `hydra.job.env_set.WANDB_API_KEY=XYZ`) keeps its key and loses its
value: `+logger.api_key=<redacted>`. Free text (an error line, Hydra's `override_dirname`, the command line
W&B records) is scrubbed of every secret value found that way that is at least MIN_SCRUB characters long;
shorter values are too common to search text for, and are redacted only where they sit under their key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
SECRET_LAST_WORDS = frozenset({"token", "key", "apikey", "secret", "secrets", "password", "passwd", "credential",
                               "credentials"})
SECRET_ANY_WORDS = frozenset({"secret", "secrets", "password", "passwd"})
SPECIAL_TOKENS = frozenset({"pad_token", "eos_token", "bos_token", "unk_token", "sep_token", "cls_token",
                            "mask_token"})
MIN_SCRUB = 4

_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_OVERRIDE = re.compile(r"^(?P<prefix>[+~]{0,2})(?P<key>[^=\s]+)=(?P<value>.*)$", re.S)


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_BREAK.split(str(name)) if w]


def is_secret_key(name) -> bool:
    """Whether a config key (or a dotted path: its last part decides) names a credential; see the module doc."""
    last = str(name).rsplit(".", 1)[-1]
    if last.lower() in SPECIAL_TOKENS:
        return False
    parts = words(last)
    if "per" in parts[:-1]:  # a rate such as chars_per_token
        return False
    return bool(parts) and (parts[-1] in SECRET_LAST_WORDS or any(w in SECRET_ANY_WORDS for w in parts))


def _is_secret_value(value) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def secret_values(obj, under_secret: bool = False) -> set[str]:
    """Every string or integer held under a secret key anywhere in a nested dict/list, as text."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            found |= secret_values(v, under_secret or is_secret_key(k))
    elif isinstance(obj, list | tuple):
        for v in obj:
            found |= secret_values(v, under_secret)
    elif under_secret and _is_secret_value(obj):
        found.add(str(obj))
    return found


def override_secrets(overrides: Iterable[str]) -> set[str]:
    """The values of command-line overrides whose key is secret (`+logger.api_key=XYZ` -> XYZ)."""
    found = set()
    for text in overrides:
        match = _OVERRIDE.match(str(text))
        if match and is_secret_key(match["key"]) and match["value"]:
            found.add(match["value"])
    return found


def scrub(text: str, values: Iterable[str]) -> str:
    """`text` with every secret value of at least MIN_SCRUB characters replaced by <redacted>."""
    for value in sorted((v for v in values if len(v) >= MIN_SCRUB), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def redact_override(text: str, values: Iterable[str] = ()) -> str:
    """One override: a secret key keeps its key and loses its value; any other is scrubbed of `values`."""
    match = _OVERRIDE.match(str(text))
    if match and is_secret_key(match["key"]):
        return f"{match['prefix']}{match['key']}={REDACTED}"
    return scrub(str(text), values)


def redact(obj, values: Iterable[str] = (), under_secret: bool = False):
    """A copy of a nested dict/list with every value under a secret key replaced, and every string
    scrubbed of `values` (known secret values, e.g. from the command line)."""
    values = tuple(values)
    if isinstance(obj, dict):
        return {k: redact(v, values, under_secret or is_secret_key(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v, values, under_secret) for v in obj]
    if under_secret and _is_secret_value(obj):
        return REDACTED
    if isinstance(obj, str):
        return scrub(obj, values)
    return obj


def redact_argv(argv: list[str], values: Iterable[str] = ()) -> list[str]:
    """A command line with its secret overrides redacted (argv[0] and flags scrubbed only)."""
    values = set(values) | override_secrets(argv)
    return [redact_override(arg, values) for arg in argv]
