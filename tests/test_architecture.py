"""Imports flow one way: the layers of `[tool.allava.architecture]` in pyproject.toml, no cycles
between modules, and no import tucked inside a function to dodge either rule.

The imports are read from the source (ast), so an import inside a function or under
`TYPE_CHECKING` counts like any other; the check needs nothing installed but the source tree.
"""
from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "allava"
LAZY_MARK = "# lazy:"  # a function-local import must say why it is deferred


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (a package's __init__ as the package name)
    line: int
    in_function: bool
    marked_lazy: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = SOURCE.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> Iterator[Import]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import mod` imports the module `pkg.mod`; `from pkg import name`, pkg.
                targets = [f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base
                           for alias in child.names]
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    text = "\n".join(lines[child.lineno - 1:child.end_lineno])
                    yield Import(importer, target, child.lineno, in_function, LAZY_MARK in text)
            yield from visit(child, inner)

    yield from visit(ast.parse(source, filename=str(path)), False)


def all_imports() -> list[Import]:
    return [imp for path in sorted((SOURCE / PACKAGE).rglob("*.py")) for imp in imports_of(path)]


def layers() -> list[set[str]]:
    """Top layer first; packages that share a layer must not import each other."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    rows = config["tool"]["allava"]["architecture"]["layers"]
    return [{name.strip() for name in row.split("|")} for row in rows]


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (allava/__init__.py)


def layer_violations(imports: list[Import], stack: list[set[str]]) -> list[str]:
    rank = {name: depth for depth, row in enumerate(stack) for name in row}
    problems = []
    for imp in imports:
        source, target = subpackage(imp.importer), subpackage(imp.imported)
        if source is None or target is None or source == target:
            continue  # the root may import anything (lazily); a package may import itself
        for name in (source, target):
            if name not in rank:
                problems.append(f"{name!r} is in no layer of [tool.allava.architecture] "
                                f"(seen in {imp.importer} line {imp.line})")
        if source in rank and target in rank and rank[target] <= rank[source]:
            where = "beside it" if rank[target] == rank[source] else "above it"
            problems.append(f"{imp.importer} (line {imp.line}) imports {imp.imported}: "
                            f"layer {target!r} is {where}; imports go down only")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.importer != imp.imported:
            graph.setdefault(imp.importer, set()).add(imp.imported)
    found, state = [], {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            walk(start, [start])
    return found


def test_every_subpackage_has_a_layer():
    names = {p.name for p in (SOURCE / PACKAGE).iterdir() if (p / "__init__.py").is_file()}
    assert names <= set().union(*layers())


def test_imports_go_down_the_layers():
    problems = layer_violations(all_imports(), layers())
    assert not problems, "\n".join(problems)


def test_no_import_cycles_between_modules():
    found = cycles(all_imports())
    assert not found, "\n".join(" -> ".join(cycle) for cycle in found)


def test_function_local_imports_say_why():
    hidden = [f"{imp.importer} line {imp.line}: {imp.imported}" for imp in all_imports()
              if imp.in_function and not imp.marked_lazy]
    assert not hidden, ("imports inside functions hide the dependency graph; move them to the "
                        f"top, or mark a deliberate one `{LAZY_MARK} <reason>`:\n" + "\n".join(hidden))


# The checks themselves, on imports made up for the purpose: each must catch what it is for.

def test_an_upward_import_is_reported():
    upward = Import("allava.models.vlm", "allava.training.module", 7, False, False)
    problems = layer_violations([upward], [{"training"}, {"models"}])
    assert problems == ["allava.models.vlm (line 7) imports allava.training.module: layer "
                        "'training' is above it; imports go down only"]


def test_an_import_between_packages_of_one_layer_is_reported():
    sideways = Import("allava.synth.engine", "allava.evaluation.runner", 3, False, False)
    assert "beside it" in layer_violations([sideways], [{"synth", "evaluation"}])[0]


def test_a_cycle_is_reported():
    loop = [Import("allava.a.x", "allava.a.y", 1, False, False),
            Import("allava.a.y", "allava.a.z", 1, False, False),
            Import("allava.a.z", "allava.a.x", 1, False, False)]
    assert cycles(loop) == [["allava.a.x", "allava.a.y", "allava.a.z", "allava.a.x"]]


@pytest.mark.parametrize("code, lazy", [("def f():\n    import allava.models.vlm\n", False),
                                        ("def f():\n    import allava.models.vlm  # lazy: start-up\n", True)])
def test_function_local_imports_are_found(tmp_path, monkeypatch, code, lazy):
    monkeypatch.setattr(f"{__name__}.SOURCE", tmp_path)
    module = tmp_path / PACKAGE / "probe.py"
    module.parent.mkdir()
    module.write_text(code)
    (found,) = list(imports_of(module))
    assert (found.importer, found.imported, found.in_function, found.marked_lazy) == (
        "allava.probe", "allava.models.vlm", True, lazy)
