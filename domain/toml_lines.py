"""Where a table or key is in a TOML file, for error messages that name the line (``file:line``).

Good enough for the hand-written config files here (headers and ``key = value`` lines); when the spot
cannot be found (inline tables, dotted keys) the message names just the file.
"""

from __future__ import annotations

from pathlib import Path


def where_in_toml(path: Path, text: str, table: str, key: str | None = None) -> str:
    """``file:line`` of ``[table]``, of ``key`` inside it, or (``key`` None, no such header) of a top-level
    key named ``table``; just the file when it is not found."""
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = line.strip("[]").strip()
            if key is None and current == table:
                return f"{path}:{number}"
            continue
        name = line.split("=", 1)[0].strip().strip('"') if "=" in line else ""
        if key is not None and current == table and name == key:
            return f"{path}:{number}"
        if key is None and current == "" and name == table:
            return f"{path}:{number}"
    return str(path)
