"""Verify Tribute's outbound webhooks with the reference Standard Webhooks
library, as a receiver would.

Reads a JSON file: [{"secret": "whsec_...", "headers": {...}, "body": "..."}].
Exits 0 when every message verifies; otherwise prints each failure and
exits 1. Run by crates/server/tests/webhooks_out.rs.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        messages = json.load(f)
    failures = 0
    for i, m in enumerate(messages):
        try:
            payload = Webhook(m["secret"]).verify(m["body"], m["headers"])
            if payload.get("type") is None or payload.get("version") != 1:
                raise ValueError(f"no type or version 1 in {payload!r}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures += 1
            print(f"message {i} ({m['headers'].get('webhook-id')}): {e!r}")
    print(f"verified {len(messages) - failures} of {len(messages)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
