"""Hostile tests of "Operations: health and readiness": serve's Advoware check says a token is issued
(the check's own, so wrong credentials show) and ``/ready`` turns red the moment a system refuses us,
not at the first failed sync. In one process (the testbed: both simulators over real HTTP).
"""

from __future__ import annotations

from installation.dependency_health import Dependency, DependencyStatus
from tests.testbed import start_testbed


async def test_hostile_the_advoware_check_sees_credentials_advoware_no_longer_accepts() -> None:
    tb = await start_testbed()
    try:
        first = {s.name: s.status for s in await tb.services.dependencies.check()}
        assert first[Dependency.ADVOWARE] == DependencyStatus.OK
        tb.advo.credentials.password = "rotated-by-the-admin"  # our ADVOWARE_PASSWORD is wrong from now on
        again = {s.name: s for s in await tb.services.dependencies.check()}
        advoware = again[Dependency.ADVOWARE]
        assert advoware.status == DependencyStatus.FAILING, advoware
        assert "ADVOWARE_PASSWORD" in (advoware.last_error or "")
    finally:
        await tb.close()
