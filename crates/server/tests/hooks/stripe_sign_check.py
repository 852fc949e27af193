#!/usr/bin/env python3
"""Check a Stripe-Signature header with Stripe's own library.

tests/inbound_hooks_stripe.rs signs its deliveries to Tribute the way the
test believes Stripe does; this script asks the official `stripe` package
(`stripe.Webhook.construct_event`, what a Stripe integration in Python
calls) whether it agrees, so the test's signer, and with it Tribute's
verifier, cannot drift from Stripe's scheme unnoticed.

Usage: stripe_sign_check.py --secret whsec_... --signature 't=...,v1=...'
with the exact payload bytes on standard input.

Exit status: 0 when the library accepts the signature (it prints the
event's id and type), 1 when it refuses the signature, 2 when the payload
is not a Stripe event it can read.
"""

import argparse
import sys

import stripe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the endpoint's signing secret")
    parser.add_argument("--signature", required=True, help="the Stripe-Signature header")
    parser.add_argument(
        "--tolerance",
        type=int,
        default=stripe.Webhook.DEFAULT_TOLERANCE,
        help="seconds a timestamp may be old (the library's default, 300)",
    )
    args = parser.parse_args()
    # The bytes exactly as sent: the signature covers them, not a re-encoding.
    payload = sys.stdin.buffer.read().decode("utf-8")
    try:
        event = stripe.Webhook.construct_event(
            payload, args.signature, args.secret, tolerance=args.tolerance
        )
    except stripe.SignatureVerificationError as e:
        print(f"rejected by stripe {stripe.VERSION}: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"unreadable payload: {e}", file=sys.stderr)
        return 2
    print(f"accepted by stripe {stripe.VERSION}: {event['id']} ({event['type']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
