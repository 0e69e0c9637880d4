"""What every ``beteiligte-sync`` command shares: global options anywhere, one-line errors.

- ``--log-level`` and ``--debug`` work before or after the subcommand (``sync X --debug``): they are
  moved in front of it before click parses (a subcommand with an option of the same name, e.g.
  ``doctor --debug``, gets it too).
- An error an operator fixes (a setting, a policy or value map file, a store that must not be used,
  EspoCRM, Advoware or Redis not reachable or refusing us) is one line on stderr naming the setting
  and the fix, exit code 2. Anything else (a bug) is one line too, exit code 1. The traceback goes to
  stderr only with ``--debug``.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

import click
import redis.exceptions

from adapters.embedded_redis import StartupError
from adapters.errors import ApiError
from config.settings import ConfigError, Settings
from domain.conflict_policy import PolicyError
from domain.value_maps import ValueMapError
from entrypoints.check_report import ExitCode
from installation.dependency_health import EMBEDDED_FIX, REDIS_URL_FIX, explain
from stephost import QueueFullError

DEBUG = "debug"  # key in click's ctx.meta (shared by every nested context)
GLOBAL_FLAGS = ("--debug",)
GLOBAL_VALUED = ("--log-level",)


class CommandRefused(Exception):
    """Raised by a command for bad input (e.g. an id EspoCRM does not have): its one line, exit code 2,
    printed after the command has shut down (so it is the last line)."""


OPERATOR_ERRORS = (ConfigError, StartupError, PolicyError, ValueMapError, CommandRefused)
QUEUE_FULL_FIX = ("serve has not worked off its event queue yet: wait until status shows fewer queued events, "
                  "then run the command again (what was not queued stays)")
CONNECTION_ERRORS = (ApiError, redis.exceptions.RedisError, ConnectionError, TimeoutError)


def hoist_global_options(args: Sequence[str], accepts: Any) -> list[str]:
    """``args`` with the global options moved to the front; ``accepts(subcommand, option)`` says whether
    the subcommand has an option of that name itself (then it keeps a copy)."""
    front: list[str] = []
    rest: list[str] = []
    sub: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_FLAGS or name in GLOBAL_VALUED:
            taken = list(args[i:i + 1]) if name in GLOBAL_FLAGS or "=" in arg else list(args[i:i + 2])
            front += taken
            if sub is not None and accepts(sub, name):
                rest += taken
            i += len(taken)
            continue
        if sub is None and not arg.startswith("-"):
            sub = arg
        rest.append(arg)
        i += 1
    return front + rest


def explain_error(exc: BaseException, settings: Settings | None) -> str | None:
    """One line naming the setting and the fix, or None when ``exc`` is not an operator's to fix."""
    if isinstance(exc, OPERATOR_ERRORS):
        return str(exc)
    if isinstance(exc, QueueFullError):
        return f"{exc}: {QUEUE_FULL_FIX}"
    if isinstance(exc, CONNECTION_ERRORS):
        redis_fix = REDIS_URL_FIX if settings is None or settings.redis_url else EMBEDDED_FIX
        return explain(exc, redis_fix=redis_fix)
    return None


class CommandGroup(click.Group):
    """The top-level group: hoists global options and turns errors into one line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, self._accepts))

    def _accepts(self, sub: str, option: str) -> bool:
        command = self.commands.get(sub)
        return bool(command) and any(option in getattr(p, "opts", ()) for p in command.params)  # type: ignore[union-attr]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            line = explain_error(exc, settings)
            if ctx.meta.get(DEBUG):
                traceback.print_exception(exc)
            if line is None:
                click.echo(f"unexpected error: {type(exc).__name__}: {exc} (run again with --debug for the "
                           "traceback)", err=True)
                ctx.exit(ExitCode.ERROR)
            click.echo(line, err=True)
            ctx.exit(ExitCode.REFUSED)
