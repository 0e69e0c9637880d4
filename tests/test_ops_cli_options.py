"""Global options before or after the subcommand: where they are moved to before click parses."""

from __future__ import annotations

import pytest

from entrypoints.cli import main
from entrypoints.cli_errors import hoist_global_options


def accepts(sub: str, option: str) -> bool:
    return sub == "doctor" and option == "--debug"  # doctor has a --debug of its own


@pytest.mark.parametrize(("args", "expected"), [
    (["sync", "abc", "--log-level", "debug"], ["--log-level", "debug", "sync", "abc"]),
    (["sync", "abc", "--log-level=debug", "--debug"], ["--log-level=debug", "--debug", "sync", "abc"]),
    (["--debug", "sync-check", "--dry-run"], ["--debug", "sync-check", "--dry-run"]),
    (["store", "status", "--debug"], ["--debug", "store", "status"]),
    (["doctor", "--debug"], ["--debug", "doctor", "--debug"]),  # both get it
    (["sync", "--", "--debug"], ["sync", "--", "--debug"]),  # after -- it is an argument
])
def test_global_options_are_moved_in_front_of_the_subcommand(args: list[str], expected: list[str]) -> None:
    assert hoist_global_options(args, accepts) == expected


def test_the_real_group_knows_which_subcommands_have_their_own_debug() -> None:
    assert hoist_global_options(["doctor", "--debug"], main._accepts) == ["--debug", "doctor", "--debug"]
    assert hoist_global_options(["sync", "x", "--debug"], main._accepts) == ["--debug", "sync", "x"]
