"""Standalone EspoCRM simulator: ``python -m simulators.espocrm --host 127.0.0.1 --port 8601``."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.espocrm.demo_data import seed_demo
from simulators.espocrm.fields import GERMAN_SALUTATIONS, STOCK_SALUTATIONS
from simulators.espocrm.profiles import Profile
from simulators.espocrm.simulator import EspoCRMSimulator

SALUTATION_PRESETS = {"stock": STOCK_SALUTATIONS, "german": GERMAN_SALUTATIONS}


def salutation_options(value: str) -> tuple[str, ...]:
    """``stock``, ``german`` or a comma-separated list (a leading comma adds the empty option)."""
    return SALUTATION_PRESETS.get(value.lower(), tuple(p.strip() for p in value.split(",")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.espocrm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument("--api-key", default="sandbox-espo-key")
    parser.add_argument("--hmac-secret", default=None)
    parser.add_argument("--admin-api-key", default=None, help="an admin's key (reads deleted records)")
    parser.add_argument("--profile", choices=[p.value for p in Profile], default=Profile.V9.value,
                        help="EspoCRM version to behave like: 8 (8.1.5) or 9 (current); default 9")
    parser.add_argument("--occ", action=argparse.BooleanOptionalAction, default=False,
                        help="optimistic concurrency control on CBeteiligte (default off, as the Entity "
                             "Manager leaves it)")
    parser.add_argument("--salutation-options", type=salutation_options, default=STOCK_SALUTATIONS,
                        metavar="OPTIONS",
                        help="salutationName options: 'stock' (default: '',Mr.,Ms.,Mrs.,Dr.), 'german' "
                             "('',Herr,Frau,Divers,Firma) or a comma-separated list, e.g. ',Herr,Frau'")
    parser.add_argument("--without-field", action="append", default=[], metavar="FIELD",
                        help="leave FIELD out of GET /Metadata, as if the admin had not created it (repeatable)")
    parser.add_argument("--seed-demo", action="store_true", help="create sample Beteiligte")
    parser.add_argument("--webhook-interval", type=float, default=5.0,
                        help="seconds between webhook job runs (EspoCRM: 120, 8.1.5: 300)")
    parser.add_argument("--webhook-retry-delay", type=float, default=0.0,
                        help="seconds a failed batch waits before it is sent again (EspoCRM: 600; "
                             "default 0: the next job run)")
    args = parser.parse_args(argv)

    sim = EspoCRMSimulator(api_key=args.api_key, hmac_secret=args.hmac_secret, admin_api_key=args.admin_api_key,
                           profile=args.profile, occ=args.occ, salutation_options=args.salutation_options,
                           missing_fields=args.without_field)
    if args.seed_demo:
        seeded = seed_demo(sim)
        print(f"seeded {len(seeded)} demo Beteiligte")
    print(f"EspoCRM {args.profile} simulator on http://{args.host}:{args.port}/api/v1/  "
          f"X-Api-Key: {args.api_key}  OCC: {'on' if args.occ else 'off'}", flush=True)
    sim.set_webhook_retry_delay(args.webhook_retry_delay)
    sim.start_webhook_job(args.webhook_interval)
    try:
        uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")
    finally:
        sim.stop_webhook_job()


if __name__ == "__main__":
    main()
