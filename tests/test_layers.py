"""The library's layers: no import cycle inside ``flamenco_lib``, no module that grew too large,
one base exception.

Imports inside functions count too: they hide a cycle from Python's import machinery, not from a
reader. The package's implicit parent imports (``a.b`` imports ``a`` first) do not count, so that
a package's ``__init__`` may re-export its submodules.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import flamenco_lib

PACKAGE = Path(flamenco_lib.__file__).parent
MAX_LINES = 450  # a module is about one thing


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, from every import statement in the file."""
    modules = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = (
            name.split(".") if is_pkg else name.split(".")[:-1]
        )  # the package a relative import starts from
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module.split(".") if node.module else []
                if node.level:
                    base = here[: len(here) - node.level + 1] + base
                base_name = ".".join(base)
                # `from pkg import sub` imports the submodule pkg.sub when there is one
                targets = [
                    f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in modules else base_name
                    for a in node.names
                ]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_in_the_library():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_hidden_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")  # hidden inside a function
    (pkg / "c.py").write_text("from pkg.a import f\n")
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import json\n")
    assert find_cycle(import_graph(pkg)) is None


def test_leaf_modules_import_nothing_from_the_library():
    graph = import_graph()
    for leaf in (
        "flamenco_lib.errors",
        "flamenco_lib.tokens",
        "flamenco_lib.hashing",
        "flamenco_lib.log",
        "flamenco_lib.allocator",
    ):
        assert graph[leaf] == set(), f"{leaf} imports {graph[leaf]}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_oversized(name):
    n = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{name}: {n} lines; split it along its sections (at most {MAX_LINES})"


def test_every_library_error_is_a_flamenco_error():
    import importlib

    errors = []
    for name in _modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__.startswith("flamenco_lib")
            ):
                errors.append(obj)
    assert len(errors) >= 10
    strays = [e.__qualname__ for e in errors if not issubclass(e, flamenco_lib.FlamencoError)]
    assert not strays, f"not derived from FlamencoError: {strays}"


def test_a_missing_debian_package_skips_with_the_reason(pytester):
    pytester.makeconftest(
        f"pytest_plugins = []\nexec(open({str(Path(__file__).with_name('conftest.py'))!r}).read())"
    )
    pytester.makepyfile(
        """
        import pytest
        from flamenco_lib.data.speech import SpeechCorpusMissing

        @pytest.fixture
        def prompts():
            raise SpeechCorpusMissing("/usr/share/asterisk/sounds/es: not found; apt-get install it")

        def test_needs_prompts(prompts):
            pass

        def test_a_real_bug():
            raise ValueError("a bug stays a failure")
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*needs what make setup installs*asterisk*"])


def test_the_declared_floors_are_the_ones_the_code_needs():
    """transformers 4.x has no ``WhisperTokenizer(tokenizer_object=...)`` (the offline model's
    tokenizer) nor ``from_pretrained(dtype=...)``: a fresh venv at transformers 4.56 failed the model
    tests, one at 5.0.0 passed them (see pyproject.toml)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]
    reqs = {r.name: r for r in map(Requirement, project["dependencies"])}
    floor = min(Version(s.version) for s in reqs["transformers"].specifier if s.operator == ">=")
    assert floor >= Version("5.0")
    for name in (
        "jupytext",
        "ipywidgets",
        "filelock",
    ):  # notebook pairs, progress bars, the build lock
        assert name in reqs
