"""The dependency map: no import cycle between modules, and no import pointing up the layers.

Every module of assignments/, calibration/, reports/ and qa2portal/ is parsed with `ast` (no
import is executed). A dependency is any `import x` / `from x import y` anywhere in the file:
at module level AND inside functions (a function-level import is a dependency all the same,
only a deferred one), and inside `if TYPE_CHECKING:` blocks too. `apps.get_model("app", ...)`
with a literal app label counts as importing that app's models, so a lookup by name cannot
hide an upward dependency. Migrations and tests/ are not part of the map.

The layers, bottom to top:

    qa2portal infrastructure (ids, api, errors: small helpers any app may use)
    assignments  <-  calibration  <-  reports
    qa2portal glue (settings, urls, celery, health, views, selectors, management commands, ...)

A module may import from its own layer or below. The glue sits on top: it wires the apps
together (URLs, Celery, the whiteboard selector installed into assignments in
qa2portal/apps.py), and no app imports it. The infrastructure modules import no app.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("assignments", "calibration", "reports", "qa2portal")

# Higher number = higher layer; an import may only go to the same number or a lower one.
INFRASTRUCTURE = frozenset({"qa2portal.ids", "qa2portal.api", "qa2portal.errors"})
LAYERS = {"assignments": 1, "calibration": 2, "reports": 3, "qa2portal": 4}
INFRASTRUCTURE_LAYER = 0

# Edges allowed for now while a fix is in flight (none today). The test fails if an entry no
# longer exists, so the list cannot outlive its fix.
PENDING: frozenset[tuple[str, str]] = frozenset()


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _known(dotted: str) -> str | None:
    """The longest prefix of `dotted` that is one of our modules (None: a third-party name)."""
    while dotted:
        if dotted in MODULES:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def _imported_names(module: str, tree: ast.AST) -> Iterator[str]:
    is_package = MODULES[module].name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # `from pkg import submodule` depends on the submodule; `from module import name`
                # on the module.
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in MODULES else source
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_model"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield f"{node.args[0].value}.models"


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = {_known(name) for name in _imported_names(module, tree)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


GRAPH = _graph()


def _layer(module: str) -> int:
    if module in INFRASTRUCTURE:
        return INFRASTRUCTURE_LAYER
    return LAYERS[module.split(".")[0]]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _without_pending() -> dict[str, set[str]]:
    return {m: {t for t in targets if (m, t) not in PENDING} for m, targets in GRAPH.items()}


def test_the_map_sees_the_modules_and_their_imports():
    # Guards the parser itself: a map that sees nothing would pass everything below.
    assert {"assignments.models", "calibration.models", "reports.models", "qa2portal.settings"} <= set(GRAPH)
    assert "assignments.models" in GRAPH["calibration.models"]
    assert "assignments.models" in GRAPH["reports.views"]  # a module-level import
    assert "qa2portal.selectors.whiteboard" in GRAPH["qa2portal.apps"]  # a function-level import


def test_the_cycle_finder_finds_a_cycle():
    found = _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert found == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = _without_pending()
    described = []
    for component in _cycles(graph):
        members = set(component)
        edges = [f"{m} -> {t}" for m in component for t in sorted(graph[m] & members)]
        described.append("cycle among " + ", ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not described, "\n".join(described)


def test_no_import_points_up_the_layers():
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(_without_pending().items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports pointing up (assignments <- calibration <- reports <- qa2portal glue):\n" + (
        "\n".join(upward)
    )


def test_every_pending_edge_still_exists():
    gone = sorted(f"{m} -> {t}" for m, t in PENDING if t not in GRAPH.get(m, set()))
    assert not gone, "fixed: remove from PENDING: " + ", ".join(gone)
