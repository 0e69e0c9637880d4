"""``beteiligte-sync store status|stop``: the embedded store (REDIS_URL unset) of STATE_DIR."""

from __future__ import annotations

import sys

import click

from adapters.embedded_redis import AOF_DIR, SANDBOX_SUBDIR, EmbeddedRedis, StartupError
from config.settings import Settings
from entrypoints.store_guard import folder_digest, probe_serve, serve_url

REFUSED_EXIT_CODE = 2


def _stores(settings: Settings) -> list[EmbeddedRedis]:
    """The store of STATE_DIR and the one of its sandbox."""
    base = settings.state_path()
    return [EmbeddedRedis(base, settings.redis_server_bin), EmbeddedRedis(base / SANDBOX_SUBDIR)]


def _aof_bytes(store: EmbeddedRedis) -> int:
    folder = store.folder / AOF_DIR
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0


@click.group()
def store() -> None:
    """The embedded store (a redis-server in STATE_DIR, used when REDIS_URL is unset)."""


@store.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """Where the embedded stores are and whether their servers run."""
    if settings.redis_url:
        click.echo("REDIS_URL is set: this configuration uses that Redis, not an embedded store")
    for s in _stores(settings):
        pid = s.server_pid()
        state = f"running (pid {pid}, socket {s.socket_path})" if pid else "not running"
        click.echo(f"{s.describe()}: {state}, append-only file {_aof_bytes(s)} bytes")


@store.command()
@click.pass_obj
def stop(settings: Settings) -> None:
    """Stop the embedded servers (their data stays on disk); refused while serve uses one."""
    serve = probe_serve(settings)
    stores = _stores(settings)
    if serve and serve.embedded in {folder_digest(s) for s in stores}:
        click.echo(f"the serve at {serve_url(settings)} uses this embedded store: stop serve first"
                   " (it would start its server again)", err=True)
        sys.exit(REFUSED_EXIT_CODE)
    for s in stores:
        try:
            stopped = s.stop()
        except StartupError as exc:
            click.echo(str(exc), err=True)
            sys.exit(REFUSED_EXIT_CODE)
        click.echo(f"{s.describe()}: {'stopped' if stopped else 'was not running'}")
