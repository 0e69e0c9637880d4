"""Issue 18, item 10: what Motia 0.17 does differently: every handler call is a new Python process.

- Such a process builds its services afresh; the EspoCRM facts (``App/user``, ``Metadata``, ``Settings``) that
  another process read within the last 10 minutes come from the store instead of three more EspoCRM
  calls (per EspoCRM address: a store reused with another EspoCRM asks again).
- Such a process configures logging itself when it builds the services from the environment: time,
  level and logger at ``LOG_LEVEL``, not Python's bare WARNING-only fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from redis.asyncio import Redis

from entrypoints.bootstrap import build_services
from tests.conftest import SAMPLE
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]
FACTS = ("App/user", "Metadata", "Settings")


def fact_reads(tb: Testbed) -> int:
    return sum(n for call, n in tb.calls().items() if call.startswith("espocrm GET") and call.endswith(FACTS))


async def test_a_fresh_process_takes_the_espocrm_facts_from_the_store(firm: Testbed, real_redis_url: str) -> None:
    rec = firm.espo.seed(**SAMPLE)
    firm.reset_calls()
    first = await firm.services.sync.sync(rec["id"], trigger="cli")
    assert first.status == "clean" and fact_reads(firm) == 3  # the first process asks EspoCRM

    for change in ("Anne", "Anna"):  # two more "handler calls", each a process of its own
        firm.espo.user_edit(rec["id"], firstName=change)
        fresh = build_services(firm.services.settings, redis=Redis.from_url(real_redis_url), clock=firm.clock)
        firm.reset_calls()
        result = await fresh.sync.sync(rec["id"], trigger="cli")
        await fresh.aclose()
        assert result.status == "clean" and fact_reads(firm) == 0, firm.calls()
        assert fresh.sync.espo_facts.user_id == firm.services.sync.espo_facts.user_id is not None
    assert firm.advo_record(int(firm.espo_record(rec["id"])["betnr"]))["vorname"] == "Anna"

    other = firm.services.settings.model_copy(update={"espocrm_url": "http://127.0.0.1:9/other"})
    elsewhere = build_services(other, redis=Redis.from_url(real_redis_url), clock=firm.clock)
    assert await elsewhere.sync.espo_facts.cache.get() is None  # type: ignore[union-attr]
    await elsewhere.aclose()


def test_services_built_from_the_environment_configure_logging(real_redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPOCRM_", "ADVOWARE_"))}
    env.update(REDIS_URL=real_redis_url, LOG_LEVEL="INFO", ESPOCRM_URL="http://127.0.0.1:9", ESPOCRM_API_KEY="k",
               ADVOWARE_URL="http://127.0.0.1:9", ADVOWARE_TOKEN_URL="http://127.0.0.1:9", ADVOWARE_APP_ID="a",
               ADVOWARE_API_KEY="k", ADVOWARE_KANZLEI="k", ADVOWARE_DATABASE="d", ADVOWARE_USER="u",
               ADVOWARE_PASSWORD="p")
    code = ("import logging; from entrypoints.bootstrap import get_services; get_services();"
            " logging.getLogger('steps.example').info('handler ran')")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          cwd="/tmp")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if "handler ran" in x)
    assert line.split()[2:] == ["INFO", "steps.example", "handler", "ran"] and line[:4].isdigit()
