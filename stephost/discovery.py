"""Find Motia-shaped step files (``**/*_step.py``), import them and validate their ``config``.

A step module exports ``config`` (a dict) and an ``async def handler``. Step files import nothing
from :mod:`stephost`; everything they need is passed in at call time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from croniter import croniter

StepType = Literal["api", "event", "cron"]
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class StepConfigError(ValueError):
    """A step file cannot be used. The message names the file and the offending key."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: config key {key!r}: {problem}")
        self.file = Path(file)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Step:
    """A validated step. ``config`` is the module's dict as written."""

    name: str
    type: StepType
    file: Path
    handler: Callable[..., Any]
    config: dict[str, Any]
    emits: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()
    path: str | None = None
    method: str | None = None
    cron: str | None = None
    flows: tuple[str, ...] = field(default=())


def validate_cron_expression(expr: Any) -> bool:
    """True for a croniter-valid 5-field (or 6-field, seconds last) expression."""
    return isinstance(expr, str) and bool(expr.strip()) and bool(croniter.is_valid(expr))


def _str_list(
    file: Path, cfg: dict[str, Any], key: str, *, required: bool, non_empty: bool
) -> tuple[str, ...]:
    if key not in cfg:
        if required:
            raise StepConfigError(file, key, "missing")
        return ()
    value = cfg[key]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise StepConfigError(file, key, "must be a list of non-empty strings")
    if non_empty and not value:
        raise StepConfigError(file, key, "must not be empty")
    return tuple(value)


def _str(file: Path, cfg: dict[str, Any], key: str) -> str:
    if key not in cfg:
        raise StepConfigError(file, key, "missing")
    value = cfg[key]
    if not isinstance(value, str) or not value.strip():
        raise StepConfigError(file, key, "must be a non-empty string")
    return value


def build_step(file: Path, module: ModuleType) -> Step:
    """Validate one imported step module and turn it into a :class:`Step`."""
    cfg = getattr(module, "config", None)
    if not isinstance(cfg, dict):
        raise StepConfigError(file, "config", "module must define a dict named 'config'")
    step_type = cfg.get("type")
    if step_type not in ("api", "event", "cron"):
        raise StepConfigError(file, "type", f"must be one of api, event, cron (got {step_type!r})")
    name = _str(file, cfg, "name")
    emits = _str_list(file, cfg, "emits", required=True, non_empty=False)
    flows = _str_list(file, cfg, "flows", required=False, non_empty=False)
    extra: dict[str, Any] = {}
    if step_type == "api":
        path = _str(file, cfg, "path")
        if not path.startswith("/"):
            raise StepConfigError(file, "path", "must start with '/'")
        method = _str(file, cfg, "method").upper()
        if method not in HTTP_METHODS:
            raise StepConfigError(file, "method", f"must be one of {', '.join(sorted(HTTP_METHODS))}")
        extra = {"path": path, "method": method}
    elif step_type == "event":
        extra = {"subscribes": _str_list(file, cfg, "subscribes", required=True, non_empty=True)}
    else:
        expr = _str(file, cfg, "cron")
        if not validate_cron_expression(expr):
            raise StepConfigError(file, "cron", f"invalid cron expression {expr!r}")
        extra = {"cron": expr}
    handler = getattr(module, "handler", None)
    if handler is None:
        raise StepConfigError(file, "handler", "module must define 'handler'")
    if not inspect.iscoroutinefunction(handler):
        raise StepConfigError(file, "handler", "must be an 'async def' function")
    return Step(
        name=name, type=step_type, file=file, handler=handler, config=cfg, emits=emits, flows=flows, **extra
    )


def _dotted_name(file: Path) -> str | None:
    """``pkg.sub.mod`` when ``file`` sits in packages importable from ``sys.path``, else None."""
    parts = [file.stem]
    parent = file.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    roots = {Path(p or ".").resolve() for p in sys.path}
    return ".".join(parts) if parent.resolve() in roots and len(parts) > 1 else None


def import_step_module(file: Path) -> ModuleType:
    """Import a step file by path; any failure becomes a :class:`StepConfigError` naming it."""
    try:
        dotted = _dotted_name(file)
        if dotted is not None:
            return importlib.import_module(dotted)
        digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
        name = f"_stephost_steps.{file.stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError("no loader for file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    except StepConfigError:
        raise
    except Exception as exc:
        problem = f"cannot import step file: {type(exc).__name__}: {exc}"
        raise StepConfigError(file, "<import>", problem) from exc


def find_step_files(dirs: list[Path]) -> list[Path]:
    files: set[Path] = set()
    for directory in dirs:
        if not Path(directory).is_dir():
            raise StepConfigError(directory, "steps.dirs", "step directory does not exist")
        files.update(p.resolve() for p in Path(directory).rglob("*_step.py") if "__pycache__" not in p.parts)
    return sorted(files)


def check_unique(steps: list[Step]) -> None:
    """Step names and API routes (method + path) must be unique."""
    names: dict[str, Path] = {}
    routes: dict[tuple[str | None, str | None], Path] = {}
    for step in steps:
        if step.name in names:
            problem = f"duplicate step name {step.name!r} (also in {names[step.name]})"
            raise StepConfigError(step.file, "name", problem)
        names[step.name] = step.file
        if step.type == "api":
            route = (step.method, step.path)
            if route in routes:
                problem = f"duplicate route {step.method} {step.path} (also in {routes[route]})"
                raise StepConfigError(step.file, "path", problem)
            routes[route] = step.file


def discover_steps(dirs: list[Path]) -> list[Step]:
    """Import and validate every ``*_step.py`` under ``dirs`` (recursively), sorted by file path."""
    steps = [build_step(f, import_step_module(f)) for f in find_step_files(dirs)]
    check_unique(steps)
    return steps
