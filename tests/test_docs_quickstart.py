"""The README's promises about itself and its quick starts.

- It stays short (at most 150 lines) and every link in it resolves.
- Its first block is the two commands, and each quick-start command is run by a test: ``./dev serve``
  here, together with every command the sandbox then prints (the edit a person makes, the commands that
  change Advoware, inject faults and look at the result); ``./dev test`` by ``.ci/run``; of the compose
  quick start, ``up`` and ``/ready`` by the container test (which runs the sandbox inside the stack), and
  for each other command the test that covers it outside a container, or why none can.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from simulators.common import free_port
from tests.embedded_support import (
    Process,
    advo_records,
    all_clean,
    env_for,
    espo_records,
    published_sandbox,
    state_root,
    wait_for,
)

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "README.md"
OPERATIONS = PROJECT / "docs" / "operations.md"
MAX_LINES = 150
SAMPLES = 3
COMPOSE_START, COMPOSE_END = "<!-- quickstart:compose", "<!-- /quickstart:compose -->"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND_TIMEOUT_S = 120


def commands(block: str) -> list[str]:
    """The commands of a shell block: comments cut, continuation lines joined."""
    joined = block.replace("\\\n", " ")
    return [c for c in (line.split("  #", 1)[0].strip() for line in joined.splitlines()) if c and c[0] != "#"]


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_is_at_most_150_lines_and_every_link_resolves() -> None:
    text = readme()
    assert len(text.splitlines()) <= MAX_LINES
    targets = [m.group(1) for m in LINK.finditer(text) if "://" not in m.group(1)]
    assert "docs/configuration.md" in targets and "docs/field-mapping.md" in targets
    assert [t for t in targets if not (PROJECT / t).is_file()] == []


def test_the_readme_starts_with_the_two_commands_and_ci_runs_them() -> None:
    first = FENCE.search(readme())
    assert first is not None and commands(first.group(1)) == ["./dev serve", "./dev test"]
    ci = (PROJECT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./dev test" in ci and "./dev docs" in ci  # ./dev serve: test_readme_dev_serve_... below


# The compose quick start, command by command: which test runs it (and the fragment it runs), or why
# none does. A command added to or changed in the README block fails here until it is placed.
COMPOSE_RUN_BY = {
    "docker compose up -d --build --wait": ("test_container_stack.py", '"up", "-d", "--build", "--wait"'),
    "curl -s http://127.0.0.1:3111/ready": ("test_container_stack.py", "/ready"),
}
COMPOSE_NOT_RUN = {
    "git clone <this repository> beteiligte-sync && cd beteiligte-sync": "the tests run in the checkout itself",
    "cp .env.example .env": "test_deploy_files.py checks .env.example; the container test runs the sandbox",
    "chmod 600 .env": "the container test runs the sandbox, without .env",
    "docker compose exec sync beteiligte-sync webhooks register": "needs an EspoCRM: test_webhook_register.py, "
                                                                 "outside a container",
    "docker compose exec sync beteiligte-sync doctor": "needs an EspoCRM: test_doctor_processes.py, outside a "
                                                       "container",
    "docker compose logs -f sync": "follows until Ctrl-C; the container test reads the logs on a failure",
}


def test_every_command_of_the_compose_quick_start_is_placed() -> None:
    text = readme()
    block = text.split(COMPOSE_START, 1)[1].split(COMPOSE_END, 1)[0]
    fence = FENCE.search(block)
    assert fence is not None
    assert sorted(commands(fence.group(1))) == sorted([*COMPOSE_RUN_BY, *COMPOSE_NOT_RUN])
    for name, fragment in COMPOSE_RUN_BY.values():
        assert fragment in (PROJECT / "tests" / name).read_text(encoding="utf-8"), (name, fragment)
    for reason in COMPOSE_NOT_RUN.values():
        for name in re.findall(r"test_\w+\.py", reason):
            assert (PROJECT / "tests" / name).is_file(), name


def _printed_commands(banner: str) -> list[str]:
    """Every ``curl`` and ``./dev`` command the sandbox prints, in order (a line may hold several)."""
    out: list[str] = []
    for line in banner.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("curl "):
            out.append(line.split("  #", 1)[0].strip())
        for part in re.split(r"(?=\./dev )", line)[1:]:
            out.append(part.split("#", 1)[0].strip())
    return out


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-c", command], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.redis
def test_readme_dev_serve_runs_the_sandbox_and_every_command_it_prints_works() -> None:
    """Also the status page's quick start (docs/operations.md): its token, ``./dev serve`` and its curl."""
    status_block = next(b for b in FENCE.findall(OPERATIONS.read_text(encoding="utf-8")) if "STATUS_TOKEN" in b)
    make_token, serve_line, look_at_page = commands(status_block)
    assert serve_line == "./dev serve &"
    with state_root() as root:
        port = free_port()
        env = env_for(root / "state", port)
        env["STATUS_TOKEN"] = _run(make_token, env).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{48}", env["STATUS_TOKEN"])
        serve = Process([str(PROJECT / "dev"), "serve"], env, root, "dev-serve.log")  # ./dev cds to the checkout
        try:
            sims = published_sandbox(root / "state")
            wait_for("the samples synced", lambda: len(all_clean(sims["espocrm_url"]) or []) == SAMPLES)
            banner: str = wait_for("the banner", lambda: serve.output() if "Try it" in serve.output() else None)
            printed = _printed_commands(banner.split("Try it", 1)[1])
            edit, *looks = [c for c in printed if c.startswith("curl ")]
            assert "-X PUT" in edit and len(looks) == 3

            _run(edit, env)  # a person edits addressCity in EspoCRM; the webhook brings it to Advoware
            rid = edit.rsplit("/", 1)[1]
            betnr = next(r["betnr"] for r in espo_records(sims["espocrm_url"]) if r["id"] == rid)
            advo = sims["advoware_simulator_url"]
            wait_for("the edit in Advoware", lambda: any(
                a["betNr"] == betnr and a.get("ort") == "Potsdam" for a in advo_records(advo)))
            for look in looks:
                httpx.Response(200, content=_run(look, env).stdout).json()  # each answers JSON

            dev = [c.replace("<betnr>", str(betnr)) for c in printed if c.startswith("./dev ")]
            assert [c.split()[1] for c in dev] == ["sandbox", "sandbox", "sandbox", "sync-check", "status", "history"]
            edit_advo, fault, clear, *rest = dev
            _run(edit_advo, env)  # an Advoware user's edit; the sync check brings it to EspoCRM
            for command in rest:
                _run(command, env)
            moved = {r["id"]: r.get("addressCity") for r in espo_records(sims["espocrm_url"])}
            assert moved[rid] == "Köln"
            assert "1 fault rule(s) active" in _run(fault, env).stdout
            assert "0 fault rule(s) active" in _run(clear, env).stdout
            page = _run(look_at_page.replace("127.0.0.1:3111", f"127.0.0.1:{port}"), env).stdout
            assert "<title>beteiligte-sync status</title>" in page and "clean" in page
        finally:
            serve.stop()
        assert serve.proc.returncode is not None
