"""serve publishes its sync settings while it runs; a writing CLI command beside it refuses in one line
while its own differ (issue 17, item 4). Files count by their content, not their path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import fakeredis

from config.advoware_profile import SHIPPED
from config.settings import Settings
from entrypoints.serve_settings import publish_loop, refusal


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_a_command_refuses_while_serves_settings_differ_and_runs_once_serve_stopped(tmp_path: Path) -> None:
    redis = fakeredis.FakeAsyncRedis()
    maps, same_maps, other_maps = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    maps.write_text("salutation: {Herr: Mr.}\n")
    same_maps.write_text("salutation: {Herr: Mr.}\n")
    other_maps.write_text("salutation: {Herr: Herr}\n")
    serve = settings(value_maps_file=str(maps))
    stop = asyncio.Event()
    loop = asyncio.create_task(publish_loop(redis, "bsync", serve, 0.05, stop))
    await asyncio.sleep(0.02)
    try:
        assert await refusal(redis, "bsync", settings(value_maps_file=str(same_maps))) is None  # same content
        copy = tmp_path / "default-copy.toml"
        copy.write_text((SHIPPED / "default.toml").read_text())
        assert await refusal(redis, "bsync", settings(value_maps_file=str(maps), advoware_profile=str(copy))) is None
        wire = await refusal(redis, "bsync", settings(value_maps_file=str(maps), advoware_profile="pascal-object"))
        assert wire is not None and "ADVOWARE_PROFILE has other contents in serve than here" in wire
        line = await refusal(redis, "bsync", settings(value_maps_file=str(other_maps), delete_policy="delete"))
        assert line is not None and "\n" not in line
        assert "DELETE_POLICY is unlink in serve, delete here" in line
        assert "VALUE_MAPS_FILE has other contents in serve than here" in line
        assert 0 < await redis.ttl("bsync:serve:settings") <= 11
    finally:
        stop.set()
        await asyncio.wait_for(loop, 2)
    assert await refusal(redis, "bsync", settings(delete_policy="delete")) is None  # no serve: nothing to differ from
