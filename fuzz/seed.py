#!/usr/bin/env python3
"""Seeds each fuzz target's corpus from the repository's own fixtures (fuzz/seeds/<target>/).

Files are copied byte for byte; a few seeds are assembled from fixture bytes in the target's
input format (a header line, then the body). Nothing comes from outside the repository.
Usage: fuzz/seed.py (idempotent: the seeds directory is rebuilt each time).
"""

import json
import shutil
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "shared" / "tests" / "fixtures"
SEEDS = FUZZ / "seeds"


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def copy(target, path):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    name = str(path.relative_to(ROOT)).replace("/", "__")
    shutil.copyfile(path, d / name)


def stripe_signature():
    vectors = json.loads((FIXTURES / "stripe" / "SIGNED_VECTORS.json").read_bytes())
    for i, v in enumerate(vectors["vectors"]):
        body = (FIXTURES / "stripe" / v["body_file"]).read_bytes()
        header = v["stripe_signature"].encode()
        put("stripe_signature", f"vector{i}", header + b"\n" + body)
        put("stripe_signature", f"vector{i}-header", header)


def translate():
    for path in sorted((FIXTURES / "stripe").rglob("*.json")):
        copy("translate", path)
    for path in sorted((FIXTURES / "paypal").rglob("*.json")):
        if path.name.endswith(".signed.json"):
            continue
        copy("translate", path)


def paypal_headers():
    names = [
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ]
    for path in sorted((FIXTURES / "paypal").glob("real-signed-*/*.signed.json")):
        signed = json.loads(path.read_bytes())
        lines = b"\n".join(signed["headers"][n].encode() for n in names)
        tag = path.parent.name
        put("paypal_headers", f"{tag}-body", lines + b"\n" + signed["raw_body"].encode())
        for pem in sorted(path.parent.glob("*.pem")):
            put("paypal_headers", f"{tag}-{pem.stem}", lines + b"\n" + pem.read_bytes())


def lambda_events():
    # API Gateway requests (sam local) and the relay's DynamoDB Stream batch.
    for path in sorted((ROOT / "events").glob("*.json")):
        if path.name != "expected.json":
            copy("lambda_events", path)


def email_render():
    for path in sorted((FIXTURES / "stripe" / "SYNTH-emails").glob("*.json")):
        copy("email_render", path)
        # The same invoice as the email context the renderer takes.
        invoice = json.loads(path.read_bytes())["data"]["object"]
        currency = invoice["currency"]
        details = {
            "number": invoice["number"],
            "amount_due": {"minor": invoice["amount_due"], "currency": currency},
            "hosted_invoice_url": invoice["hosted_invoice_url"],
            "pay_by": {"type": "next_attempt", "at": invoice["next_payment_attempt"]},
            "lines": [
                {
                    "description": line["description"],
                    "amount": {"minor": line["amount"], "currency": currency},
                }
                for line in invoice["lines"]["data"]
            ],
        }
        for kind in ["payment_action_required", "payment_failed"]:
            ctx = {
                "object_id": invoice["id"],
                "recipient": invoice["customer_email"],
                "content": {"kind": kind, **details},
            }
            put("email_render", f"{path.stem}-{kind}", json.dumps(ctx).encode())
        name = invoice["lines"]["data"][0]["description"]
        for content in [
            {"kind": "welcome", "product_name": name},
            {"kind": "subscription_cancelled", "reason": "payment_failed",
             "product_name": name, "ends_at": invoice["next_payment_attempt"]},
        ]:
            ctx = {"object_id": invoice["id"], "recipient": invoice["customer_email"],
                   "content": content}
            put("email_render", f"{path.stem}-{content['kind']}", json.dumps(ctx).encode())


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    for seed in [stripe_signature, translate, paypal_headers, lambda_events, email_render]:
        seed()
    for d in sorted(SEEDS.iterdir()):
        print(f"{d.name}: {sum(1 for _ in d.iterdir())} seeds")
