"""Tests that a clone can run: test modules share code only through tests/helpers and tests/conftest.py,
and no test writes to the user's caches or the repository's output folders (tests/conftest.py gives the
session cache folders of its own)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.session import LIBRARY_FOLDER_VARIABLES, changed_folders, footprint, session_variables

TESTS = ROOT / "tests"
# `from tests.test_x import f` or `import tests.test_x`, also inside code a test runs with `python -c`.
TEST_MODULE_IMPORT = re.compile(r"\b(?:from|import)\s+(?:tests\.)?test_\w+")


def imported_test_modules(path: Path) -> list[str]:
    """`line: module` for each import of a tests/test_*.py module in the file (code or a string of code)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # `from tests.test_x import f`, `from tests import test_x`
            module = f"{node.module}." if node.module else ""
            names = [node.module or "", *(module + alias.name for alias in node.names)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [m.split()[-1] for m in TEST_MODULE_IMPORT.findall(node.value)]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_no_test_file_imports_a_test_module():
    offenders = {str(path.relative_to(ROOT)): found for path in sorted(TESTS.rglob("*.py"))
                 if (found := imported_test_modules(path))}
    assert offenders == {}, "move shared code into tests/helpers or tests/conftest.py"


def test_the_import_check_finds_each_form(tmp_path):
    source = tmp_path / "test_example.py"
    # Written with TEST_ for test_, so that this file does not hold the imports it checks for.
    source.write_text("import os\nfrom tests.helpers import ROOT\nfrom tests.TEST_faults import run\n"
                      "import tests.TEST_seed\nfrom . import TEST_store\nfrom tests import helpers, TEST_cli\n"
                      "CODE = 'from tests.TEST_caches import killed_builder; killed_builder()'\n"
                      .replace("TEST_", "test_"))
    assert imported_test_modules(source) == ["3: tests.test_faults", "4: tests.test_seed", "5: test_store",
                                             "6: tests.test_cli", "7: tests.test_caches"]


# A process started by a test prints where the product and its libraries would write.
WHERE_CACHES_RESOLVE = """
import json, sys
from pathlib import Path
import huggingface_hub.constants as hf
import matplotlib
from wandb import env as wandb_env
from introspection.core.config import default_cache_dir
from tests.helpers import compose_cfg
print(json.dumps({
    "home": str(Path.home()), "~/.cache": str(Path("~/.cache").expanduser()),
    "store_dir (conf default)": str(compose_cfg([]).store_dir),
    "introspection.core.config.default_cache_dir()": str(default_cache_dir()),
    "huggingface HF_HOME": hf.HF_HOME, "huggingface HF_HUB_CACHE": hf.HF_HUB_CACHE,
    "wandb cache": str(wandb_env.get_cache_dir()), "wandb data": wandb_env.get_data_dir(),
    "matplotlib cache": matplotlib.get_cachedir(), "matplotlib config": matplotlib.get_configdir(),
}))
"""


def test_the_product_and_its_libraries_resolve_their_caches_in_the_sessions_folder(session_folders):
    base = session_folders.base.resolve()
    for name, value in session_variables(session_folders.base).items():
        assert os.environ.get(name) == value, name
    # Unset at the session's start. Tests that ran before this one may have set one since, in this process:
    # torch writes its own default into TORCHINDUCTOR_CACHE_DIR (a folder under the system's temp dir, not a
    # user cache) the first time anything asks where its compile cache is. Any other value is a leak.
    from introspection.inference.vllm_backend import _inductor_default_dir

    torch_default = _inductor_default_dir()  # the folder torch itself puts there when it is unset
    leaked = {name: os.environ[name] for name in LIBRARY_FOLDER_VARIABLES if name in os.environ
              and base not in Path(os.environ[name]).resolve().parents and os.environ[name] != torch_default}
    assert leaked == {}

    proc = subprocess.run([sys.executable, "-c", WHERE_CACHES_RESOLVE], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = json.loads(proc.stdout.splitlines()[-1])
    outside = {what: path for what, path in resolved.items() if base not in Path(path).resolve().parents}
    assert outside == {}, f"not under the session's folder {base}"
    watched = {what: path for what, path in resolved.items() for folder in session_folders.watched
               if Path(path).resolve() == folder.resolve() or folder.resolve() in Path(path).resolve().parents}
    assert watched == {}


def test_the_footprint_sees_a_new_entry_two_levels_down(tmp_path):
    (tmp_path / "store" / "artifacts" / "answers").mkdir(parents=True)
    before = footprint([tmp_path / "store"])
    assert str(tmp_path / "store" / "artifacts" / "answers") in before
    os.utime(tmp_path / "store" / "artifacts" / "answers", ns=(0, 0))  # as an older folder
    before = footprint([tmp_path / "store"])
    (tmp_path / "store" / "artifacts" / "answers" / "k").mkdir()
    assert changed_folders(before, footprint([tmp_path / "store"])) == [str(tmp_path / "store" / "artifacts" / "answers")]


@pytest.mark.session_end
def test_this_session_wrote_nothing_to_the_users_caches_or_the_repositorys_output_folders(session_folders):
    """Folders (two levels deep) whose entries changed since the session started. Another process writing
    there meanwhile (a `make demo` beside the tests) shows here too."""
    changed = changed_folders(session_folders.before, footprint(session_folders.watched))
    assert changed == [], "a test wrote outside its tmp_path (store_dir=..., hydra.run.dir=... missing?)"
