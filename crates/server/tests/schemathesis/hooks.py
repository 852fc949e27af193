"""Schemathesis hooks for tests/schemathesis.rs: the state a document cannot know.

The OpenAPI document says what a well-formed request is. Some rules depend
on what the database holds, on the clock or on a list, which no schema can
say: a `program_id` must name a program that exists, a link's destination
must be on that program's allowed domains, an expiry must be in the future,
`from` must not be after `to`, an allowed domain must not be a public suffix,
an `Idempotency-Key` must not repeat with another body. For schema-valid (positive) cases only, this hook swaps
such values for ones that hold in the test's database (the seeded records in
TRIBUTE_ST_FIXTURE); every swapped-in value is itself valid under the
document, so a case stays as valid as it was generated. Negative cases are
sent exactly as generated.
"""

import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone

import schemathesis

FIXTURE = json.loads(os.environ["TRIBUTE_ST_FIXTURE"])

# Path `{id}`s, by the collection they belong to: records the run may read and
# change without breaking the references below.
PATH_IDS = {
    "/api/v1/programs/": FIXTURE["patchable_program_id"],
    "/api/v1/partners/": FIXTURE["patchable_partner_id"],
    "/api/v1/links/": FIXTURE["link_id"],
    "/api/v1/coupons/": FIXTURE["coupon_id"],
    "/api/v1/conversions/": FIXTURE["conversion_id"],
    "/api/v1/payouts/": FIXTURE["payout_id"],
    "/api/v1/webhook-endpoints/": FIXTURE["webhook_endpoint_id"],
    "/api/v1/webhook-deliveries/": FIXTURE["webhook_delivery_id"],
    "/api/v1/integrations/": FIXTURE["integration_id"],
}

# Other path parameters naming a record, by parameter and collection.
PATH_OTHER_IDS = {
    ("delivery_id", "/api/v1/integrations/"): FIXTURE["inbound_delivery_id"],
}


def rfc3339(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(v):
    """A period bound as the server reads it, or None."""
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def references(path, method):
    """Field -> value that exists (or holds now) for this operation."""
    now = datetime.now(timezone.utc)
    refs = {
        "program_id": FIXTURE["program_id"],
        "partner_id": FIXTURE["partner_id"],
        "team_lead_id": FIXTURE["team_lead_id"],
        "destination": "https://acme.test/landing",
        # Public suffixes (`com`, `co.uk`, `a.se`) are refused: the Public
        # Suffix List is data, not a pattern.
        "cookie_domain": ".acme.test",
        "via": FIXTURE["partner_slug"],
        "occurred_at": rfc3339(now - timedelta(hours=1)),
        "expires_at": rfc3339(now + timedelta(days=30)),
    }
    if path == "/api/v1/conversions" and method == "POST":
        refs["currency"] = FIXTURE["currency"]
    if path == "/api/v1/fx-rates" and method == "POST":
        # Rates convert into the program's currency, from another one.
        refs["to_currency"] = FIXTURE["currency"]
    # A scope's link must be one of the program's.
    refs["link_id"] = FIXTURE["link_id"]
    return refs


def swap(value, refs):
    """Replace referenced fields, at any depth (events come in batches)."""
    if isinstance(value, list):
        return [swap(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in refs and isinstance(v, str) and v.strip():
            out[k] = refs[k]
        elif k == "allowed_domains" and isinstance(v, list):
            out[k] = [f"site{i}.acme.test" for i in range(len(v))]
        elif k == "properties":
            out[k] = v  # free-form: sent as generated
        else:
            out[k] = swap(v, refs)
    return out


def order_period(query):
    """`from` after `to` (or after now, when `to` is left out) is refused."""
    start = parse_time(query.get("from"))
    if start is None:
        return
    end = parse_time(query.get("to"))
    if end is None and query.get("to") is None:
        end = datetime.now(timezone.utc)
        if start > end:
            query["from"] = rfc3339(end - timedelta(days=1))
    elif end is not None and start > end:
        query["from"] = query["to"]


def well_formed_id(value, existing):
    """Whether `value` is an id of the same kind as `existing` (`prg_…`)."""
    kind = existing.split("_", 1)[0]
    return isinstance(value, str) and re.fullmatch(kind + r"_[A-Za-z0-9]{1,64}", value)


def unknown_id(existing):
    """A well-formed id of the same kind and length as `existing` that names nothing."""
    kind = existing.split("_", 1)[0]
    return kind + "_" + "0" * (len(existing) - len(kind) - 1)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    method = case.operation.method.upper()
    # Any well-formed path id, whatever the case (the stateful phase also
    # takes ids from earlier answers), goes to a record the run may change:
    # a case that is invalid elsewhere may still be accepted, and must not
    # wipe the seeded program's allowed domains. A DELETE never reaches
    # those records, so they stay for the whole run: it keeps its own id, or
    # gets an unknown one where an earlier answer gave it theirs. The hook
    # URL (`/hooks/{kind}/{id}`) is left alone: its optional signature
    # headers come empty, and the fixture's integration is not for it.
    if isinstance(case.path_parameters, dict):
        params = case.path_parameters
        for prefix, existing in PATH_IDS.items():
            if "id" not in params or not path.startswith(prefix):
                continue
            if method == "DELETE":
                if params["id"] == existing:
                    params["id"] = unknown_id(existing)
            elif well_formed_id(params["id"], existing):
                params["id"] = existing
        for (name, prefix), existing in PATH_OTHER_IDS.items():
            if name in params and path.startswith(prefix) and well_formed_id(params[name], existing):
                params[name] = existing
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    refs = references(path, method)
    # A key names one request: reusing it with another body is refused
    # (422), and a generator repeats values. Each case gets its own.
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key":
            case.headers[name] = f"st-{uuid.uuid4().hex}"
    if isinstance(case.query, dict):
        case.query = swap(case.query, refs)
        order_period(case.query)
    if isinstance(case.body, dict):
        case.body = swap(case.body, refs)
        order_period(case.body)
        if path == "/api/v1/fx-rates" and method == "POST":
            sent = case.body.get("from_currency")
            if isinstance(sent, str) and sent.strip().upper() == FIXTURE["currency"]:
                case.body["from_currency"] = "USD" if FIXTURE["currency"] != "USD" else "GBP"
        # An admin key must name the partner a link is for (a partner key
        # creates links for itself): the document says so in words.
        if path in ("/api/v1/links", "/api/v1/payout-requests") and method == "POST" and FIXTURE["admin"]:
            if case.body.get("partner_id") is None:
                case.body["partner_id"] = FIXTURE["partner_id"]
        # Team override levels add up to at most 100% (10000 bps): said in
        # words, since a schema cannot sum.
        levels = case.body.get("override_levels_bps")
        if isinstance(levels, list) and sum(levels) > 10000:
            case.body["override_levels_bps"] = [v * 10000 // sum(levels) for v in levels]

