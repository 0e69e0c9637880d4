"""Step discovery and config validation: every problem names the file and the key."""

from pathlib import Path

import pytest

from stephost.discovery import StepConfigError, discover_steps
from tests.stephost_fixtures.support import APP_STEPS, BROKEN

HANDLERS = {
    "api": "async def handler(req, context):\n    return {'status': 200, 'body': None}\n",
    "event": "async def handler(data, context):\n    return None\n",
    "cron": "async def handler(context):\n    return None\n",
}
VALID = {
    "api": {"type": "api", "name": "a", "path": "/a/:id", "method": "POST", "emits": []},
    "event": {"type": "event", "name": "e", "subscribes": ["t"], "emits": ["u"]},
    "cron": {"type": "cron", "name": "c", "cron": "*/15 * * * *", "emits": []},
}


def write_step(folder: Path, config: object, handler: str, stem: str = "generated_step") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(f"config = {config!r}\n\n{handler}")
    return path


def test_finds_nested_steps_of_every_type() -> None:
    steps = {s.name: s for s in discover_steps([APP_STEPS])}
    assert {"echo", "chain-start", "chain-first", "chain-last", "flaky", "tick", "fanout-a"} <= set(steps)
    assert steps["chain-last"].file == (APP_STEPS / "events/nested/chain_last_step.py").resolve()
    assert steps["echo"].type == "api" and steps["echo"].method == "POST"
    assert steps["echo"].path == "/echo/:kind/:id"
    assert steps["chain-first"].subscribes == ("fx.chain.start",) and steps["chain-first"].emits == (
        "fx.chain.next",
    )
    assert steps["tick"].cron == "0 3 1 1 *" and steps["tick"].flows == ("fixtures",)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("api", "name"), ("api", "path"), ("api", "method"), ("api", "emits"), ("api", "type"),
        ("event", "name"), ("event", "subscribes"), ("event", "emits"),
        ("cron", "name"), ("cron", "cron"), ("cron", "emits"),
    ],
)
def test_each_missing_key_is_named_with_the_file(tmp_path: Path, kind: str, key: str) -> None:
    config = {k: v for k, v in VALID[kind].items() if k != key}
    path = write_step(tmp_path / f"{kind}_{key}", config, HANDLERS[kind])
    with pytest.raises(StepConfigError) as err:
        discover_steps([tmp_path / f"{kind}_{key}"])
    assert err.value.key == key
    assert str(path.resolve()) in str(err.value) and repr(key) in str(err.value)


@pytest.mark.parametrize(
    ("kind", "key", "value"),
    [
        ("api", "type", "webhook"),
        ("api", "method", "FETCH"),
        ("api", "path", "no-slash"),
        ("api", "emits", "t"),
        ("api", "name", ""),
        ("event", "subscribes", []),
        ("event", "subscribes", ["ok", 3]),
        ("cron", "cron", "every minute"),
        ("cron", "cron", "61 * * * *"),
        ("event", "flows", "beteiligte-sync"),
    ],
)
def test_invalid_values_are_rejected(tmp_path: Path, kind: str, key: str, value: object) -> None:
    path = write_step(tmp_path, {**VALID[kind], key: value}, HANDLERS[kind])
    with pytest.raises(StepConfigError) as err:
        discover_steps([tmp_path])
    assert err.value.key == key and err.value.file == path.resolve()


def test_six_field_cron_with_seconds_is_accepted(tmp_path: Path) -> None:
    write_step(tmp_path, {**VALID["cron"], "cron": "*/5 * * * * *"}, HANDLERS["cron"])
    assert discover_steps([tmp_path])[0].cron == "*/5 * * * * *"


def test_sync_handler_is_rejected() -> None:
    with pytest.raises(StepConfigError, match=r"sync_handler_step\.py: config key 'handler'"):
        discover_steps([BROKEN / "sync_handler"])


def test_missing_handler_is_rejected(tmp_path: Path) -> None:
    write_step(tmp_path, VALID["event"], "")
    with pytest.raises(StepConfigError, match="'handler'"):
        discover_steps([tmp_path])


def test_module_without_config_is_rejected() -> None:
    with pytest.raises(StepConfigError, match=r"no_config_step\.py: config key 'config'"):
        discover_steps([BROKEN / "no_config"])


def test_import_error_names_the_file() -> None:
    with pytest.raises(StepConfigError, match=r"import_error_step\.py.*ModuleNotFoundError"):
        discover_steps([BROKEN / "import_error"])


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken_syntax_step.py").write_text("config = {\n")
    with pytest.raises(StepConfigError, match=r"broken_syntax_step\.py.*SyntaxError"):
        discover_steps([tmp_path])


def test_duplicate_step_names_are_rejected() -> None:
    with pytest.raises(StepConfigError, match="duplicate step name 'same-name'") as err:
        discover_steps([BROKEN / "duplicate"])
    assert err.value.key == "name"


def test_duplicate_routes_are_rejected(tmp_path: Path) -> None:
    write_step(tmp_path, {**VALID["api"], "name": "one"}, HANDLERS["api"], "one_step")
    write_step(tmp_path, {**VALID["api"], "name": "two"}, HANDLERS["api"], "two_step")
    with pytest.raises(StepConfigError, match="duplicate route POST /a/:id"):
        discover_steps([tmp_path])


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StepConfigError, match="does not exist"):
        discover_steps([tmp_path / "absent"])


def test_files_not_ending_in_step_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("raise RuntimeError('must not be imported')\n")
    write_step(tmp_path, VALID["event"], HANDLERS["event"])
    assert [s.name for s in discover_steps([tmp_path])] == ["e"]
