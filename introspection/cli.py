"""Check command-line overrides before Hydra starts, so a mistake costs one clear line, not a trace.

Hydra's own messages for a bad group option or a wrongly typed value span several lines; here every
override is composed once against the structured config and any failure becomes:
    error: unknown model 'nope' (command line: model=nope); valid: demo, llama3_8b, ...
It also turns the one-side model swap `model.m1=NAME` (or `model/m1=NAME`) into Hydra's spelling
`model/llm@model.m1=NAME`: the catalogue entry conf/model/llm/NAME.yaml placed as M1.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                          "--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}


MODEL_SIDE = re.compile(r"^model[./](m1|m2)=")


def rewrite_model_sides(argv: list[str]) -> list[str]:
    """model.m1=NAME / model/m2=NAME -> model/llm@model.m1=NAME / model/llm@model.m2=NAME."""
    return [MODEL_SIDE.sub(r"model/llm@model.\1=", arg) for arg in argv]


def group_options(group: str) -> list[str]:
    """The YAML options of a config group folder (e.g. model -> [demo, llama3_70b, ...])."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def hydra_group_options(group: str) -> list[str]:
    """Options of one of Hydra's own groups (e.g. hydra/launcher: its plugins' and ours in conf/hydra/)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def _overrides(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in HYDRA_FLAGS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        out.append(arg)
    return out


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if not ln.startswith(("object_type=", "Set the environment")))


def check_overrides(overrides: list[str]) -> str | None:
    """Return a one-line error for the first bad override, or None when all compose."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import introspection.core.config  # noqa: F401  (registers the schemas)

    mine = list(overrides)  # Hydra's own settings too (hydra/launcher=..., hydra.launcher.partition=...)
    try:
        parsed = OverridesParser.create().parse_overrides(mine)
    except HydraException as e:
        return f"cannot parse the overrides {' '.join(mine)}: {_one_line(e)}"

    # Group choices first: the clearest message names the valid options.
    for ov, text in zip(parsed, mine, strict=True):
        group = ov.key_or_group
        options = hydra_group_options(group) if group.startswith("hydra/") else group_options(group)
        if options and "." not in group:
            values = [str(v) for v in ov.sweep_iterator()] if ov.is_sweep_override() else [str(ov.value())]
            for v in values:
                if v not in options and not ov.is_delete():
                    return f"unknown {group} '{v}' (command line: {text}); valid: {', '.join(options)}"

    # Then every value through the typed schema; a sweep is checked one value at a time.
    variants: list[list[str]] = []
    base = [f"{ov.get_key_element()}={next(iter(ov.sweep_string_iterator()))}" if ov.is_sweep_override() else text
            for ov, text in zip(parsed, mine, strict=True)]
    variants.append(base)
    for i, ov in enumerate(parsed):
        if ov.is_sweep_override():
            for v in list(ov.sweep_string_iterator())[1:]:
                variants.append(base[:i] + [f"{ov.get_key_element()}={v}"] + base[i + 1:])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for variant in variants:
            try:
                compose(config_name="config", overrides=variant, return_hydra_config=True)
            except (HydraException, OmegaConfBaseException, ValueError) as e:
                cause = e.__cause__ or e
                return f"bad override in '{' '.join(variant)}': {_one_line(cause)}"
    return None


OUTPUT_FOLDER_KEYS = ("hydra.run.dir", "hydra.sweep.dir")


def check_output_folders(overrides: list[str]) -> str | None:
    """A run or sweep folder given on the command line must be creatable; Hydra itself would fail on it
    with a traceback, before the task starts. (As root, permission bits are not checked by the OS.)"""
    for text in overrides:
        key, _, value = text.partition("=")
        if key.lstrip("+") not in OUTPUT_FOLDER_KEYS or not value or "${" in value:
            continue
        folder = Path(value).expanduser().absolute()
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            return f"{key.lstrip('+')}={value} cannot be created: {existing} is a file, not a folder; give a folder there"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{key.lstrip('+')}={value} cannot be created: {existing} is not writable; give a writable folder"
    return None


def validate_cli(argv: list[str]) -> None:
    if any(a in ("--help", "-h", "--hydra-help") for a in argv):
        return
    problem = check_overrides(_overrides(argv)) or check_output_folders(_overrides(argv))
    if problem:
        from introspection.core.secrets import override_secrets, scrub

        problem = scrub(problem, override_secrets(_overrides(argv)))  # never echo a credential
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
