"""Issue 17 item 2 as a real ``serve`` process: it starts on a store that lost the webhook secrets
(REDIS_URL emptied; the webhooks are still in EspoCRM, registered by the API user) and reads them
back by itself at start, without a person; ``/ready`` shows the ``webhooks`` check ok. A signed
delivery after a later FLUSHALL is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from adapters.webhook_secrets import SECRETS_KEY
from simulators.common import free_port
from tests.embedded_support import ESPO_API_KEY, env_for, start_serve, wait_for
from tests.redis_server import RedisServer
from tests.test_ops_health import get, root, simulator_on, systems_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["root"]  # the fixture


def register_as_api_user(espo_url: str, service_url: str) -> dict[str, str]:
    secrets = {}
    for event in ("create", "update", "delete"):
        hook = httpx.post(f"{espo_url}/api/v1/Webhook", headers={"X-Api-Key": ESPO_API_KEY}, timeout=10, json={
            "event": f"CBeteiligte.{event}", "url": f"{service_url}/vmh/webhook/beteiligte/{event}"}).json()
        secrets[hook["id"]] = hook["secretKey"]
    return secrets


def signed(hook_id: str, secret: str, items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(items).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json",
                  "Signature": base64.b64encode(f"{hook_id}:{digest}".encode()).decode()}


def test_serve_reads_the_lost_secrets_back_at_start_and_after_a_flushall(root: Path) -> None:
    espo = simulator_on("simulators.espocrm", espo_port := free_port(), root)
    advo = simulator_on("simulators.advoware", advo_port := free_port(), root)
    server = RedisServer()
    server.start()
    port = free_port()
    env = env_for(root / "state", port, REDIS_URL=server.url,
                  **systems_env(f"http://127.0.0.1:{espo_port}", f"http://127.0.0.1:{advo_port}"))
    secrets = register_as_api_user(f"http://127.0.0.1:{espo_port}", f"http://127.0.0.1:{port}")
    serve = start_serve(env, root)  # the store is empty: webhooks register's secrets are gone
    try:
        ready = wait_for("ready with the webhook secrets", lambda: get(env["PORT"], "/ready").status_code == 200
                         and get(env["PORT"], "/ready").json())
        assert ready["dependencies"]["webhooks"]["status"] == "ok"
        with Redis.from_url(server.url) as client:
            stored = {k.decode(): v.decode() for k, v in client.hgetall(SECRETS_KEY).items()}
            assert stored == secrets
            client.flushall()
        hook_id = next(iter(secrets))
        body, headers = signed(hook_id, secrets[hook_id], [{"id": "0123456789abcdef0", "lastName": "X"}])
        answer = httpx.post(f"http://127.0.0.1:{port}/vmh/webhook/beteiligte/update", content=body,
                            headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        serve.stop()
        server.close()
        espo.stop()
        advo.stop()
    log = serve.output()
    assert "read 3 back from EspoCRM" in log and "Traceback" not in log, log
    assert not any(s in log for s in secrets.values())  # never a secret in the log
