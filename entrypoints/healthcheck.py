"""``python -m entrypoints.healthcheck``: exit 0 while this machine's ``serve`` answers ``GET /health``
with 200 (the container's HEALTHCHECK; stdlib only, so it costs little every few seconds).

It asks 127.0.0.1 on ``PORT``, over HTTPS when ``TLS_CERT_FILE`` is set (not verified: the certificate
names the public host, and the answer is only a status).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def main() -> int:
    port = os.environ.get("PORT", "").strip() or "3111"
    tls = bool(os.environ.get("TLS_CERT_FILE", "").strip())
    context = ssl._create_unverified_context() if tls else None  # noqa: S323 - local liveness probe
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as answer:  # noqa: S310
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
