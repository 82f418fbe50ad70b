"""Imports point down: every module of ``sidecar`` belongs to a declared layer, imports only from its own layer
or lower ones, and the import graph has no cycle. Read from the source with ``ast`` (function-level imports
included; ``if TYPE_CHECKING:`` blocks, which never run, excluded). docs/how-it-works.md describes the layers.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sidecar"

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("sidecar", "errors", "secret", "names", "access", "files", "deadline", "retry_policy",
                     "content", "shell", "stopping", "outcomes", "metrics", "versions")),
    ("values", ("references", "template", "output", "selection")),
    ("planning", ("plan",)),
    ("edges", ("log", "output_dir", "commit", "health", "notify", "aws", "assumed_role", "aws_errors", "bodylimit",
               "credentials", "retrying", "fetch", "task_metadata", "probe")),
    ("settings", ("settings", "config")),
    ("rendering", ("render",)),
    ("least privilege", ("iam_policy",)),
    ("orchestration", ("run", "refresh", "preflight")),
    ("linter", ("lint",)),
    ("compose", ("compose",)),
    ("least privilege command", ("iam_policy_command",)),
    ("command line", ("cli", "__main__")),
]
BOTOCORE_USERS = {
    "sidecar.aws", "sidecar.assumed_role", "sidecar.aws_errors", "sidecar.bodylimit", "sidecar.lint.model",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} is in no layer: declare it in tests/test_layers.py")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in (child, *_runtime_nodes(child)))
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(module: str) -> set[str]:
    """The modules (of any package) that ``module`` imports when it runs."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    return {module: {m for m in imports(module) if m in MODULES and m != module} for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_its_own_layer_or_lower(module: str) -> None:
    upward = [(m, LAYERS[layer_of(m)][0]) for m in sorted(graph()[module]) if layer_of(m) > layer_of(module)]
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports from a higher layer: {upward}"


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for imported in sorted(edges[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])


def test_only_the_declared_modules_import_botocore() -> None:
    users = {m for m in MODULES if any(i == "botocore" or i.startswith("botocore.") for i in imports(m))}
    assert users == BOTOCORE_USERS


def test_the_reading_sees_the_imports_the_source_has() -> None:
    """The reading of imports can fail: an edge the source has is seen."""
    assert "sidecar.render" not in graph()["sidecar.commit"]
    assert "sidecar.output" in graph()["sidecar.commit"]
    assert "sidecar.lint.task" in graph()["sidecar.lint.model"]  # an import inside a function counts
    assert "sidecar.settings.parsers" in graph()["sidecar.settings.options"]  # from package import module
    assert layer_of("sidecar.render") > layer_of("sidecar.commit")  # so commit -> render would be upward


def test_how_it_works_lists_the_layers_as_declared_here() -> None:
    text = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture"):]
    rows = re.findall(r"^\| ([a-z ]+) \| (.+?) \| .+ \|$", section, re.M)[1:]  # [0]: the header row
    # A package's modules are named in parentheses after it: the layer holds the package.
    documented = [(layer, set(re.findall(r"`(\w+)/?`", re.sub(r"\(.*?\)", "", modules)))) for layer, modules in rows]
    declared = [(layer, set(members) - {"sidecar"}) for layer, members in LAYERS]
    assert documented == declared
