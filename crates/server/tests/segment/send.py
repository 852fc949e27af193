"""Send one visitor's journey to Tribute with the real Segment Python SDK.

Used by crates/server/tests/segment.rs: a page view landing with the click
id of a partner link, an identify (user id + e-mail), and an
"Order Completed" track that carries only the user id, so Tribute must
stitch the three together to credit the partner.

Every message has a fixed messageId and timestamp, so running the script
twice with the same arguments re-sends the same batch, as an SDK retrying
after a lost response would.

Exits 0 once the SDK's queue is flushed without errors; exit status 3 when
the SDK is not installed (the Rust test decides whether that is a skip).
"""

import argparse
import sys
from datetime import datetime

try:
    import segment.analytics as analytics
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"segment-analytics-python is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--write-key", required=True)
    p.add_argument("--tid", required=True, help="click id from the partner link")
    p.add_argument("--run", required=True, help="prefix of ids, unique per test")
    p.add_argument("--timestamp", required=True, help="ISO 8601 time of the messages")
    p.add_argument("--email", required=True)
    p.add_argument("--order-id", required=True)
    args = p.parse_args()

    errors = []

    def on_error(error, items):
        errors.append(f"{error} ({len(items)} messages)")

    analytics.write_key = args.write_key
    analytics.host = args.host
    analytics.on_error = on_error
    analytics.max_retries = 1
    analytics.gzip = False

    at = datetime.fromisoformat(args.timestamp)
    anonymous_id = f"{args.run}-anon"
    user_id = f"{args.run}-user"

    analytics.page(
        anonymous_id=anonymous_id,
        name="Pricing",
        properties={"path": "/pricing"},
        context={"page": {"url": f"https://acme.test/pricing?tid={args.tid}"}},
        timestamp=at,
        message_id=f"{args.run}-page",
    )
    analytics.identify(
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits={"email": args.email, "name": "Ada Lovelace", "plan": "pro"},
        timestamp=at,
        message_id=f"{args.run}-identify",
    )
    analytics.track(
        user_id=user_id,
        event="Order Completed",
        properties={
            "order_id": args.order_id,
            "revenue": 49.99,
            "currency": "EUR",
            "products": [{"sku": "PRO-1", "name": "Pro plan", "price": 49.99, "quantity": 1}],
        },
        timestamp=at,
        message_id=f"{args.run}-order",
    )
    analytics.flush()
    analytics.shutdown()

    if errors:
        print("the SDK reported errors: " + "; ".join(errors), file=sys.stderr)
        return 1
    print("sent 3 messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
