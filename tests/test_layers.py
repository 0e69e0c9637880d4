"""The layers of the service, enforced on the source: who may import whom, and no import cycles.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: an import hidden
in a function is still a dependency, and a type-only cycle still ties two modules together.

    domain       pure: decision, mapping, value maps, conflict policy, statuses (imports nothing of ours)
    adapters     the outside world: HTTP clients, Redis store, token cache, embedded redis-server
    sync         the use cases: sync one record, create, delete, sync check, retries, failures
    onboarding   matching and onboarding: match, --apply, --import-unmatched, --create-new, held creates
    installation setup checks (doctor), webhook registration and recovery, dependency health
    entrypoints  CLI, HTTP intake, runtime, sandbox, and bootstrap (the composition root)
    steps        Motia-shaped step files: thin, they reach the service through entrypoints.bootstrap
    stephost     our generic step host; simulators: stand-ins for EspoCRM and Advoware (config only: the wire profile)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "config": set(),
    "adapters": {"domain", "config"},
    "sync": {"domain", "adapters", "config"},
    "onboarding": {"domain", "adapters", "config", "sync"},
    "installation": {"domain", "adapters", "config"},
    "entrypoints": {"domain", "adapters", "sync", "onboarding", "installation", "config", "stephost", "simulators"},
    "steps": {"entrypoints", "sync", "domain"},
    "stephost": set(),
    # The Advoware simulator reads the same wire profile file as the client (issue 21): config only.
    "simulators": {"config"},
}
# The one production module allowed to import the simulators (only ever imported in sandbox mode).
SIMULATOR_GATE = "entrypoints.sandbox"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imported_names(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imported_names(ast.parse(path.read_text(), str(path))):
            if target in modules and target != name:
                edges[name].add(target)
    return {name: edges[name] for name in modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_every_import_follows_the_layers() -> None:
    wrong = []
    for source, targets in _graph().items():
        layer = source.split(".")[0]
        for target in targets:
            target_layer = target.split(".")[0]
            if target_layer == layer:
                continue
            if target_layer not in ALLOWED[layer]:
                wrong.append(f"{source} -> {target}")
            elif target_layer == "simulators" and source != SIMULATOR_GATE:
                wrong.append(f"{source} -> {target} (only {SIMULATOR_GATE} may import the simulators)")
    assert wrong == []


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_command_outside_sandbox_mode_loads_no_simulator() -> None:
    probe = (
        "import sys, entrypoints.cli, entrypoints.startup, entrypoints.bootstrap, entrypoints.runtime; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('simulators', 'tests')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
