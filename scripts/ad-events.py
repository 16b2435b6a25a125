#!/usr/bin/env python3
"""Writes the Meta and Google sample events (REST API events, as API Gateway sends them).

The signed Meta events carry the X-Hub-Signature-256 of their exact body with the
development app secret; run this again after changing a body, so the signature matches.
"""
import hashlib
import hmac
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
META_SECRET = "local-dev-meta-app-secret"
META_TOKEN = "local-dev-meta-verify-token"
GOOGLE_KEY = "local-dev-google-key"
HOST = "leads.example.execute-api.ap-south-1.amazonaws.com"


def event(slug, method, headers, body=None, query=None, request_id="0"):
    route = f"/admin/mg-digital-leads/source/{slug}"
    headers = {"Host": HOST, **headers}
    return {
        "resource": route,
        "path": route,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "leads",
            "domainName": HOST,
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.20", "userAgent": headers.get("User-Agent", "")},
            "path": f"/live{route}",
            "protocol": "HTTP/1.1",
            "requestId": f"ad000000-0000-4000-8000-{request_id:0>12}",
            "requestTimeEpoch": 1795428000000,
            "resourceId": "abc123",
            "resourcePath": route,
            "stage": "live",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def notification(*leadgen_ids, page_id="102030405060708"):
    changes = [
        {
            "field": "leadgen",
            "value": {
                "leadgen_id": leadgen_id,
                "page_id": page_id,
                "form_id": "444555666777888",
                "adgroup_id": "120210000000000001",
                "ad_id": "120210000000000002",
                "created_time": 1795427990,
            },
        }
        for leadgen_id in leadgen_ids
    ]
    return json.dumps(
        {"object": "page", "entry": [{"id": page_id, "time": 1795428000, "changes": changes}]},
        separators=(",", ":"),
    )


def signed(body, secret=META_SECRET):
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def meta_post(body, signature, request_id):
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return event("meta", "POST", headers, body, request_id=request_id)


def google_lead(key, is_test=False, columns=None, lead_id="TeSter-123-ABCabc"):
    columns = columns or [
        {"column_name": "Full Name", "string_value": "Kavya Menon", "column_id": "FULL_NAME"},
        {"column_name": "User Phone", "string_value": "+91 98450 12345", "column_id": "PHONE_NUMBER"},
        {"column_name": "User Email", "string_value": "kavya@example.com", "column_id": "EMAIL"},
        {"column_name": "Vehicle model", "string_value": "MG Hector", "column_id": "VEHICLE_MODEL"},
    ]
    lead = {
        "lead_id": lead_id,
        "user_column_data": columns,
        "api_version": "1.0",
        "form_id": 194054118492,
        "campaign_id": 21934567890,
        "gcl_id": "Cj0KCQjwit_8BRCoARIsAIx3Rj7g",
        "adgroup_id": 160000000000,
        "creative_id": 690000000000,
        "lead_submit_time": "2026-11-23T10:00:00Z",
        "is_test": is_test,
    }
    if key is not None:
        lead["google_key"] = key
    return json.dumps(lead, indent=2)


def google_post(body, request_id):
    headers = {"Content-Type": "application/json", "User-Agent": "Google-Ads-Lead-Form"}
    return event("google", "POST", headers, body, request_id=request_id)


def handshake(token, request_id):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": token}
    return event("meta", "GET", {"User-Agent": "facebookplatform/1.0"}, None, query, request_id)


EVENTS = {
    "meta/handshake": handshake(META_TOKEN, 1),
    "meta/handshake-wrong-token": handshake("not-the-token", 2),
    "meta/notification": meta_post(notification("9100000000000001"), None, 3),
    "meta/batched-notification": meta_post(
        notification("9100000000000002", "9100000000000003", "9100000000000002"), None, 4
    ),
    "meta/invalid-signature": meta_post(
        notification("9100000000000004"), signed(notification("9100000000000004"), "not-the-secret"), 5
    ),
    "meta/missing-signature": meta_post(notification("9100000000000005"), "missing", 6),
    "google/lead": google_post(google_lead(GOOGLE_KEY), 11),
    "google/test-lead": google_post(google_lead(GOOGLE_KEY, is_test=True, lead_id="TeSter-456-test"), 12),
    "google/first-and-last-name": google_post(
        google_lead(
            GOOGLE_KEY,
            columns=[
                {"string_value": "Rohan", "column_id": "FIRST_NAME"},
                {"string_value": "Gupta", "column_id": "LAST_NAME"},
                {"string_value": "09876543210", "column_id": "PHONE_NUMBER"},
                {"string_value": "Windsor EV", "column_id": "which_model_are_you_interested_in?"},
            ],
            lead_id="Cj0KCQjw-first-last",
        ),
        13,
    ),
    "google/wrong-key": google_post(google_lead("not-the-key"), 14),
    "google/missing-key": google_post(google_lead(None), 15),
    "google/missing-phone": google_post(
        google_lead(GOOGLE_KEY, columns=[{"string_value": "Asha", "column_id": "FULL_NAME"}]), 16
    ),
}

for name, value in EVENTS.items():
    if name.startswith("meta/") and value["httpMethod"] == "POST":
        signature = value["headers"].get("X-Hub-Signature-256")
        if signature is None:
            value["headers"]["X-Hub-Signature-256"] = signed(value["body"])
            value["multiValueHeaders"]["X-Hub-Signature-256"] = [signed(value["body"])]
        elif signature == "missing":
            del value["headers"]["X-Hub-Signature-256"]
            del value["multiValueHeaders"]["X-Hub-Signature-256"]
    path = ROOT / "events" / f"{name}.json"
    path.write_text(json.dumps(value, indent=2) + "\n")
    print(path.relative_to(ROOT))
