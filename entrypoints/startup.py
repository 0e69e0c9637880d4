"""What every command does before it runs: choose the store, check it is shared, set up the sandbox.

- ``REDIS_URL`` set: that Redis. Unset: the embedded redis-server of ``STATE_DIR``
  (:mod:`adapters.embedded_redis`), started on first use and shared by ``serve`` and every CLI command.
- A CLI command first makes sure it would share its store with a running ``serve``
  (:mod:`entrypoints.store_guard`), before anything is started.
- Sandbox mode (neither ``ESPOCRM_URL`` nor ``ADVOWARE_URL``): the process that owns the sandbox folder
  starts the simulators on an emptied store; CLI commands beside a sandbox ``serve`` use its
  simulators and store (:mod:`entrypoints.sandbox_owner`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.embedded_redis import EmbeddedRedis, find_redis_server
from config.settings import ConfigError, Settings
from domain.beteiligte_mapper import configure_value_maps
from domain.conflict_policy import load_policy
from entrypoints.bootstrap import Services, build_services
from entrypoints.fingerprint_secret import fingerprint_key, refuse_another_key
from entrypoints.sandbox_owner import SandboxBusy, SandboxOwner, attach, owner_pid
from entrypoints.store_checks import check_store
from entrypoints.store_guard import refuse_unshared

if TYPE_CHECKING:  # the simulators are loaded only in sandbox mode (see _start_sandbox)
    from entrypoints.sandbox import Sandbox


@dataclass
class Prepared:
    services: Services
    embedded: EmbeddedRedis | None
    sandbox: Sandbox | None = None
    owner: SandboxOwner | None = None

    def close(self) -> None:
        if self.sandbox:
            self.sandbox.stop()
        if self.owner:
            self.owner.release()


def prepare(settings: Settings, *, service_url: str | None = None) -> Prepared:
    """Services for this process; ``service_url`` is given by ``serve`` (the URL of its webhooks).
    Raises :class:`adapters.embedded_redis.StartupError` or :class:`config.settings.ConfigError` (one line
    for the operator) when it must not run, before anything is started."""
    embedded = None if settings.redis_url else EmbeddedRedis.for_settings(settings)
    if embedded and not embedded.is_running():
        find_redis_server(embedded.binary)  # the first thing to install, whatever else is wrong
    if not settings.sandbox:
        settings.require_production()
    load_policy(settings.conflict_policy_file)  # a wrong file stops us here, before a store or sandbox starts
    configure_value_maps(settings.value_maps_file)
    if service_url is None:
        refuse_unshared(settings, embedded)
    if embedded:
        embedded.ensure_running()
    if not settings.sandbox:
        check_store(settings, embedded, serve=service_url is not None)
        refuse_another_key(settings, embedded, fingerprint_key(settings))
        return Prepared(build_services(settings), embedded)
    folder = (embedded or EmbeddedRedis.for_settings(settings)).folder
    owner = SandboxOwner.try_acquire(folder)
    if owner is None:
        if service_url:
            raise SandboxBusy(f"a sandbox already runs on {folder} (pid {owner_pid(folder) or 'unknown'}):"
                              " stop it, or give this serve its own STATE_DIR")
        check_store(settings, embedded, serve=False)
        return Prepared(build_services(attach(folder, settings)), embedded)
    try:
        sandbox = _start_sandbox(settings, embedded, service_url)
    except BaseException:
        owner.release()
        raise
    try:
        check_store(settings, embedded, serve=service_url is not None)
    except BaseException:
        sandbox[1].stop()
        owner.release()
        raise
    prepared = Prepared(build_services(sandbox[0]), embedded, sandbox[1], owner)
    if service_url:
        owner.publish(prepared.services.settings, advoware_simulator_url=sandbox[1].advo_server.url)
    return prepared


def _start_sandbox(settings: Settings, embedded: EmbeddedRedis | None,
                   service_url: str | None) -> tuple[Settings, Sandbox]:
    """Both simulators on a store emptied first: their records start afresh, links to old ones would lie."""
    from entrypoints.sandbox import start_sandbox  # sandbox mode only: production never loads the simulators

    if embedded:
        with embedded.sync_client() as client:
            client.flushall()
    sandbox = start_sandbox(seed_samples=False, profile=settings.wire_profile())
    secrets: dict[str, str] = {}
    if service_url:
        secrets = asyncio.run(sandbox.register_webhooks(service_url))
    sandbox.seed()  # after the webhooks exist, so the samples arrive as create webhooks
    return sandbox.settings(settings, secrets, discovery=True), sandbox


def check_port_free(settings: Settings) -> None:
    """:class:`ConfigError` naming HOST/PORT when ``serve`` could not listen there (in use, or not an
    address of this machine); checked before the host starts, so the operator gets one line, not uvicorn's."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
        family, kind, proto, _name, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"configuration: cannot listen on HOST {settings.host} PORT {settings.port} "
                          f"({exc.strerror or exc}): stop what uses it or set PORT (or HOST) to a free one") from None


def check_tls(settings: Settings) -> None:
    """:class:`ConfigError` naming TLS_CERT_FILE/TLS_KEY_FILE when they are not a PEM certificate and its
    key (checked before anything starts, so the operator gets one line, not the ssl module's traceback)."""
    if not settings.tls_cert_file or not settings.tls_key_file:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.tls_cert_file,
                                                                             settings.tls_key_file)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise ConfigError(f"configuration: TLS_CERT_FILE {settings.tls_cert_file} and TLS_KEY_FILE "
                          f"{settings.tls_key_file} cannot be used ({reason}): give a PEM certificate (chain) "
                          "and its matching unencrypted private key") from None
