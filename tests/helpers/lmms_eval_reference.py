"""lmms-eval's own task utilities, imported from the installed package for differential tests.

`import lmms_eval.tasks` would run `lmms_eval/tasks/__init__.py`, which imports lmms-eval's whole
task machinery (datasets, evaluate, transformers, ...: the ~50 dependencies we install it
without, see requirements-nodeps.lock). The task folders themselves (`pope/`, `mme/`,
`_task_utils/`, ...) have no `__init__.py`, and their files need only the standard library,
loguru, PyYAML, numpy, pandas and each other. So `load` registers `lmms_eval.tasks` as a bare
package module (its `__path__` is the installed `tasks/` folder, its `__init__.py` is never run)
and then imports the requested files by their real dotted names: `from
lmms_eval.tasks._task_utils.vqa_eval_metric import ...` inside them resolves to the installed
files, through the ordinary import system. `lmms_eval/__init__.py` is empty and
`lmms_eval.verifiers` (imported by `mmmu/utils.py`) needs only the standard library, so those
are imported as they are.

If lmms-eval (or loguru, pandas) is missing, or another version than LMMS_EVAL_VERSION is
installed (the tests' tables of known differences are written against it), `require` skips the
calling test and names the extra that installs it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

LMMS_EVAL_VERSION = "0.7.3"
INSTALL_HINT = (
    f"pip install --no-deps lmms-eval=={LMMS_EVAL_VERSION} && pip install -e '.[eval-ref]' "
    "(`make install` does both)"
)
TASKS_PACKAGE = "lmms_eval.tasks"


class ReferenceUnavailable(RuntimeError):
    """lmms-eval (or one of the few packages its task utils import) is not importable."""


def unavailable_reason() -> str | None:
    """Why the reference cannot be loaded here, or None when it can."""
    try:
        version = importlib.metadata.version("lmms-eval")
    except importlib.metadata.PackageNotFoundError:
        return f"lmms-eval is not installed; install the extra eval-ref: {INSTALL_HINT}"
    if version != LMMS_EVAL_VERSION:
        return (f"lmms-eval {version} is installed, these tests are written against "
                f"{LMMS_EVAL_VERSION}: {INSTALL_HINT}")
    for module in ("loguru", "pandas", "yaml", "numpy"):
        if importlib.util.find_spec(module) is None:
            return f"{module} (imported by lmms-eval's task utils) is missing: {INSTALL_HINT}"
    return None


def tasks_dir() -> Path:
    """The installed `lmms_eval/tasks/` folder (found without importing lmms_eval.tasks)."""
    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceUnavailable(f"lmms-eval is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def _register_bare_tasks_package() -> None:
    """Put a module standing for `lmms_eval.tasks` in sys.modules without running its __init__."""
    existing = sys.modules.get(TASKS_PACKAGE)
    if existing is not None:
        return  # the real package (someone imported it) or our bare one: either resolves the files
    folder = tasks_dir()
    if not (folder / "__init__.py").is_file():
        raise ReferenceUnavailable(f"{folder} is not lmms-eval's tasks package")
    parent = importlib.import_module("lmms_eval")  # an empty __init__.py
    bare = ModuleType(TASKS_PACKAGE, "lmms_eval.tasks, registered bare: its __init__.py is not run")
    bare.__path__ = [str(folder)]
    bare.__package__ = TASKS_PACKAGE
    bare.__file__ = None
    sys.modules[TASKS_PACKAGE] = bare
    parent.tasks = bare


def load(name: str) -> ModuleType:
    """The lmms-eval task file `name`, relative to `lmms_eval/tasks/` in dotted form, e.g.
    "pope.utils", "_task_utils.vqa_eval_metric", "mmbench.en_utils"."""
    reason = unavailable_reason()
    if reason is not None:
        raise ReferenceUnavailable(reason)
    _register_bare_tasks_package()
    module = importlib.import_module(f"{TASKS_PACKAGE}.{name}")
    expected = tasks_dir().joinpath(*name.split(".")).with_suffix(".py")
    if Path(module.__file__).resolve() != expected.resolve():
        raise ReferenceUnavailable(f"{module.__name__} came from {module.__file__}, not {expected}")
    # Their per-item code logs through loguru (e.g. MMBench's "A might be a quantifier"); quiet.
    from loguru import logger

    logger.disable("lmms_eval")
    return module


def require(name: str) -> ModuleType:
    """`load(name)`, or skip the calling test (module-level use skips the whole file)."""
    try:
        return load(name)
    except ReferenceUnavailable as error:
        pytest.skip(str(error), allow_module_level=True)
