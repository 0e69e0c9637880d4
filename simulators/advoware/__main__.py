"""Run the Advoware simulator standalone: ``python -m simulators.advoware --port 8602 --seed-demo``."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from config.advoware_profile import ProfileError, load_profile
from simulators.advoware.configurator import PATH
from simulators.advoware.simulator import AdvowareSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.advoware", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8602)
    parser.add_argument("--seed-demo", action="store_true", help="create a few sample Beteiligte")
    parser.add_argument("--no-post-rowid", action="store_true", help="POST answers without rowId")
    parser.add_argument("--no-list", action="store_true", help="the list endpoint answers 404")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--profile", default=os.environ.get("ADVOWARE_PROFILE") or "default",
                        help="the wire profile to speak: a TOML file or a shipped name (default: ADVOWARE_PROFILE, "
                             "else default)")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        sys.exit(f"ADVOWARE_PROFILE {exc}")
    sim = AdvowareSimulator(token_lifetime=args.token_lifetime, profile=profile,
                            post_returns_rowid=False if args.no_post_rowid else None,
                            list_endpoint=False if args.no_list else None)
    if args.seed_demo:
        sim.seed_demo()
    url = f"http://{args.host}:{args.port}"
    # Sandbox credentials of the simulator, not real secrets.
    print(f"Advoware simulator on {url}")
    print(f"  ADVOWARE_URL={url}")
    print(f"  ADVOWARE_TOKEN_URL={url}")
    print(f"  (or leave both out and discover them: ADVOWARE_CONFIGURATOR_URL={url}{PATH})")
    for key, value in sim.client_settings().items():
        print(f"  ADVOWARE_{key.upper()}={value}")
    print(f"  ADVOWARE_TIMEZONE={sim.timezone}")
    print(f"  ADVOWARE_PROFILE={profile.source}")
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
