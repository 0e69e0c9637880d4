"""Hostile tests of "Operations: errors": a wrong setting is one line naming the setting and the fix.
Real processes against the standalone simulators (``systems`` from ``tests/test_ops_errors.py``).
"""

from __future__ import annotations

import pytest

from tests.embedded_support import advo_records, cli, create_as_staff
from tests.test_ops_errors import Systems, one_line_error, systems  # noqa: F401 - the module fixture

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_hostile_sync_with_a_wrong_espocrm_path_names_espocrm_url_not_the_id(systems: Systems) -> None:  # noqa: F811
    s = systems
    espo_id = create_as_staff(s.espo, "Pfadfehler")
    before = advo_records(s.advo)
    env = {**s.env, "ESPOCRM_URL": f"{s.espo}/crm"}  # EspoCRM is at the root; the operator added /crm
    line = one_line_error(cli(env, "sync", espo_id, cwd=s.root))
    assert "ESPOCRM_URL" in line, line
    assert "check the id" not in line, line
    assert advo_records(s.advo) == before


def test_hostile_advoware_urls_with_api_v1_are_accepted(systems: Systems) -> None:  # noqa: F811
    s = systems
    espo_id = create_as_staff(s.espo, "MitApiV1")
    env = {**s.env, "ADVOWARE_URL": f"{s.advo}/api/v1/", "ADVOWARE_TOKEN_URL": f"{s.advo}/api/v1"}
    done = cli(env, "sync", espo_id, cwd=s.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "decision=create" in done.stdout
    assert [r["name"] for r in advo_records(s.advo)].count("MitApiV1") == 1
