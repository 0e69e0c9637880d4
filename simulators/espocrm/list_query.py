"""EspoCRM simulator: list requests (``maxSize``, ``offset``, ``orderBy``, ``order``, ``select``, ``where``).

``where`` arrives as PHP bracket query parameters (``where[0][value][1][type]=isNull``); they are
parsed into nested lists/dicts, then evaluated with SQL semantics (a null attribute matches only
``isNull``/``isNotNull``, never a comparison).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MAX_SIZE_LIMIT = 200
DEFAULT_MAX_SIZE = 20

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class BadListRequest(ValueError):
    """400 with ``X-Status-Reason``."""


class MaxSizeExceeded(ValueError):
    """403: EspoCRM refuses ``maxSize`` above 200."""


def parse_bracket_params(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``[("where[0][type]", "isNull"), ...]`` -> ``{"where": [{"type": "isNull"}]}``."""
    root: dict[str, Any] = {}
    for key, value in items:
        m = _KEY.match(key)
        if not m:
            root[key] = value
            continue
        path = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node: dict[str, Any] = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _coerce(kind: str, value: Any) -> Any:
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise BadListRequest(f"Bad where value {value!r}.") from None
    if not isinstance(value, str):
        raise BadListRequest("Bad where value.")
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


Predicate = Callable[[dict[str, Any]], bool]


def compile_where(item: Any, kinds: dict[str, str]) -> Predicate:
    """One where item (already parsed) -> predicate over a record."""
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise BadListRequest("Bad where item.")
    wtype: str = item["type"]
    if wtype in ("or", "and"):
        subs = [compile_where(s, kinds) for s in _as_list(item.get("value"))]
        if wtype == "or":
            return lambda r: any(p(r) for p in subs)
        return lambda r: all(p(r) for p in subs)
    attr = item.get("attribute")
    if not isinstance(attr, str) or attr not in kinds:
        raise BadListRequest(f"Bad where item: unknown attribute {attr!r}.")
    kind = kinds[attr]
    if wtype == "isNull":
        return lambda r: r.get(attr) is None
    if wtype == "isNotNull":
        return lambda r: r.get(attr) is not None
    if wtype in ("in", "notIn"):
        options = [_coerce(kind, v) for v in _as_list(item.get("value"))]
        if wtype == "in":
            return lambda r: r.get(attr) is not None and r.get(attr) in options
        return lambda r: r.get(attr) is not None and r.get(attr) not in options
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "equals": lambda a, b: a == b,
        "notEquals": lambda a, b: a != b,
        "after": lambda a, b: a > b,
        "greaterThan": lambda a, b: a > b,
        "before": lambda a, b: a < b,
        "lessThan": lambda a, b: a < b,
    }
    op = ops.get(wtype)
    if op is None:
        raise BadListRequest(f"Bad where item: unknown type {wtype!r}.")
    target = _coerce(kind, item.get("value"))
    return lambda r: r.get(attr) is not None and op(r.get(attr), target)


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadListRequest(f"Bad {name}.") from None
    if value < 0:
        raise BadListRequest(f"Bad {name}.")
    return value


@dataclass(frozen=True)
class ListRequest:
    """A checked list request: page, order, filter and projection."""

    max_size: int
    offset: int
    order_by: str
    descending: bool
    predicates: list[Predicate]
    select: list[str] | None

    def sort_page(self, records: list[dict[str, Any]], kinds: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
        """Filter and sort every record (in creation order), then page: ``(total, page)``."""
        matched = [r for r in records if all(p(r) for p in self.predicates)]
        order_by = self.order_by
        # Stable sort keeps creation order for ties (also descending); nulls first ascending, like MySQL.
        matched.sort(key=lambda r: (r.get(order_by) is not None, r.get(order_by) or 0)
                     if kinds[order_by] == "int"
                     else (r.get(order_by) is not None, r.get(order_by) or ""),
                     reverse=self.descending)
        return len(matched), matched[self.offset: self.offset + self.max_size]

    def project(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.select is None:
            return page
        return [{f: r.get(f) for f in self.select} for r in page]


def parse_list_request(
    query_items: Iterable[tuple[str, str]],
    kinds: dict[str, str],
    *,
    default_order_by: str = "createdAt",
    default_order: str = "desc",
) -> ListRequest:
    """The query parameters, checked in EspoCRM's order (``maxSize`` first, ``where`` last)."""
    params = parse_bracket_params(query_items)
    max_size = _int_param(params, "maxSize", DEFAULT_MAX_SIZE)
    if max_size > MAX_SIZE_LIMIT:
        raise MaxSizeExceeded(f"Max size should not exceed {MAX_SIZE_LIMIT}. Use offset and limit.")
    offset = _int_param(params, "offset", 0)
    order_by = params.get("orderBy") or default_order_by
    if not isinstance(order_by, str) or order_by not in kinds:
        raise BadListRequest("Bad orderBy.")
    order = params.get("order") or default_order
    if order not in ("asc", "desc"):
        raise BadListRequest("Bad order.")
    where = params.get("where")
    predicates = [compile_where(w, kinds) for w in _as_list(where)] if where is not None else []
    select = params.get("select")
    fields = None
    if isinstance(select, str) and select:
        fields = ["id"] + [f for f in select.split(",") if f and f != "id" and f in kinds]
    return ListRequest(max_size, offset, order_by, order == "desc", predicates, fields)


def run_list_query(
    records: list[dict[str, Any]],
    query_items: Iterable[tuple[str, str]],
    kinds: dict[str, str],
    *,
    default_order_by: str = "createdAt",
    default_order: str = "desc",
) -> dict[str, Any]:
    """Filter, sort, page and project ``records`` (in creation order) -> ``{"total", "list"}``."""
    request = parse_list_request(query_items, kinds, default_order_by=default_order_by,
                                 default_order=default_order)
    total, page = request.sort_page(records, kinds)
    return {"total": total, "list": request.project(page)}
