"""Sandbox mode: both simulators in-process, webhooks wired, sample data seeded.

Used when neither ESPOCRM_URL nor ADVOWARE_URL is set, so a new user sees real syncs at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from secrets import token_urlsafe
from typing import Any

from pydantic import SecretStr

from adapters.espocrm_api import EspoCRMAPI
from config.advoware_profile import AdvowareProfile
from config.settings import Settings
from simulators.advoware.configurator import PATH as CONFIGURATOR_PATH
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, serve_in_thread
from simulators.espocrm.demo_data import seed_demo
from simulators.espocrm.fields import GERMAN_SALUTATIONS
from simulators.espocrm.simulator import EspoCRMSimulator

EVENTS = ("create", "update", "delete")


@dataclass
class Sandbox:
    espo: EspoCRMSimulator
    advo: AdvowareSimulator
    espo_server: ServerHandle
    advo_server: ServerHandle
    webhook_ids: dict[str, str] = field(default_factory=dict)

    def settings(self, base: Settings, secrets: dict[str, str] | None = None, *, discovery: bool = False) -> Settings:
        """The settings of these simulators. ``discovery`` (the sandbox ``serve``): the Advoware addresses are
        discovered by Kanzlei at the simulator's configurator, as a firm's are; else they are set."""
        creds = self.advo.client_settings()
        url = self.advo_server.url
        return base.model_copy(update={
            "espocrm_url": self.espo_server.url,
            "espocrm_api_key": _secret(self.espo.api_key),
            "advoware_url": None if discovery else url,
            "advoware_token_url": None if discovery else url,
            "advoware_configurator_url": url + CONFIGURATOR_PATH if discovery else base.advoware_configurator_url,
            "advoware_app_id": creds["app_id"],
            "advoware_api_key": _secret(creds["api_key"]),
            "advoware_kanzlei": creds["kanzlei"],
            "advoware_database": creds["database"],
            "advoware_user": creds["user"],
            "advoware_password": _secret(creds["password"]),
            "espocrm_webhook_secrets": {k: _secret(v) for k, v in (secrets or {}).items()},
            # The status page is on in the sandbox: with STATUS_TOKEN if set, else a token made now
            # (the banner prints it; a restart makes a new one).
            "status_token": base.status_token or _secret(token_urlsafe(18)),
            "sandbox_mode": True,
        })

    async def register_webhooks(self, service_url: str) -> dict[str, str]:
        """Registers the three webhooks as the sync's API user (so ``skipOwn`` hides its writes)."""
        secrets: dict[str, str] = {}
        async with EspoCRMAPI(self.espo_server.url, self.espo.api_key) as api:
            for ev in EVENTS:
                hook = await api.register_webhook(f"CBeteiligte.{ev}", f"{service_url}/vmh/webhook/beteiligte/{ev}")
                secrets[hook["id"]] = hook["secretKey"]
                self.webhook_ids[ev] = hook["id"]
        return secrets

    def seed(self) -> list[dict[str, Any]]:
        return seed_demo(self.espo)

    def stop(self) -> None:
        self.espo.stop_webhook_job()
        self.espo_server.stop()
        self.advo_server.stop()


def _secret(value: str) -> Any:
    return SecretStr(value)


def start_sandbox(*, seed_samples: bool = True, profile: AdvowareProfile | None = None) -> Sandbox:
    """``profile``: the Advoware simulator speaks ADVOWARE_PROFILE's wire, as the sandbox's client does."""
    # OCC on, German salutations, phone numbers kept as typed: what the sync still assumes (issue 6);
    # a real EspoCRM differs in all three (the simulator's defaults). Profile 9: a current EspoCRM.
    espo = EspoCRMSimulator(salutation_options=GERMAN_SALUTATIONS)  # OCC off, as the Entity Manager leaves it
    advo = AdvowareSimulator(profile=profile)
    sandbox = Sandbox(espo, advo, serve_in_thread(espo.app), serve_in_thread(advo.app))
    if seed_samples:
        sandbox.seed()  # EspoCRM is the master: its records flow to Advoware
    return sandbox


def banner(sandbox: Sandbox, service_url: str, status_token: str) -> str:
    token = status_token if status_token else "(set STATUS_TOKEN)"
    some = sandbox.espo.all()
    rid = some[0]["id"] if some else "<id>"
    return f"""
beteiligte-sync is running in SANDBOX mode (no ESPOCRM_URL / ADVOWARE_URL configured).
  service:            {service_url}   (GET /health, /ready, /metrics)
  status page:        {service_url}/status   user any, password: {token}
  EspoCRM simulator:  {sandbox.espo_server.url}/api/v1/   staff key: {sandbox.espo.staff_api_key}
  Advoware simulator: {sandbox.advo_server.url}/{sandbox.advo.profile.resource_path}   (found by discovery)
  EspoCRM sends its webhooks every 2 s here (every 2 min in a real EspoCRM).

Try it - edit a record in EspoCRM as a person would:
  curl -s -X PUT -H 'X-Api-Key: {sandbox.espo.staff_api_key}' -H 'Content-Type: application/json' \\
       -d '{{"addressCity": "Potsdam"}}' {sandbox.espo_server.url}/api/v1/CBeteiligte/{rid}
then, a few seconds later, see it arrive in Advoware (the record's betnr is the Advoware key):
  curl -s {sandbox.espo_server.url}/__sim/records/{rid}      # syncStatus, betnr, advowareLastSync
  curl -s {sandbox.advo_server.url}/__sim/records            # every Advoware Beteiligter
  curl -s {sandbox.advo_server.url}/__sim/calls              # API calls the sync made, per endpoint
Change a Beteiligter in Advoware (the next sync check brings it to EspoCRM), or make a system fail:
  ./dev sandbox advoware-edit <betnr> ort=Köln
  ./dev sandbox fault advoware 503 --count 3                 # then: ./dev sandbox clear-faults advoware
  ./dev sync-check        ./dev status        ./dev history {rid}
"""
