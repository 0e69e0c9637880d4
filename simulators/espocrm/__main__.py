"""Standalone EspoCRM simulator: ``python -m simulators.espocrm --host 127.0.0.1 --port 8601``."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.espocrm.demo_data import seed_demo
from simulators.espocrm.simulator import EspoCRMSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.espocrm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument("--api-key", default="sandbox-espo-key")
    parser.add_argument("--hmac-secret", default=None)
    parser.add_argument("--seed-demo", action="store_true", help="create sample Beteiligte")
    parser.add_argument("--webhook-interval", type=float, default=5.0,
                        help="seconds between webhook deliveries (EspoCRM: 120)")
    args = parser.parse_args(argv)

    sim = EspoCRMSimulator(api_key=args.api_key, hmac_secret=args.hmac_secret)
    if args.seed_demo:
        seeded = seed_demo(sim)
        print(f"seeded {len(seeded)} demo Beteiligte")
    print(f"EspoCRM simulator on http://{args.host}:{args.port}/api/v1/  X-Api-Key: {args.api_key}",
          flush=True)
    sim.start_webhook_job(args.webhook_interval)
    try:
        uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")
    finally:
        sim.stop_webhook_job()


if __name__ == "__main__":
    main()
