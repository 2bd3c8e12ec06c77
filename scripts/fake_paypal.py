"""A stand-in for PayPal's REST API on 127.0.0.1, for scripts/lambda-invoke-check: the two calls
`PAYPAL_VERIFICATION=api` makes, and nothing else.

    fake_paypal.py --port PORT --key-dir DIR --client-id ID --client-secret SECRET

- `POST /v1/oauth2/token`: a bearer token for the client id and secret (HTTP Basic), else 401.
- `POST /v1/notifications/verify-webhook-signature`: with that token, checks the transmission
  the way PayPal does (SHA256withRSA over `transmission_id|transmission_time|webhook_id|
  crc32(webhook_event)`, the event as the exact bytes the request carries) against the public
  key `billing paypal-event` made in DIR (`paypal-local.pub.der`), not against a PayPal
  certificate; answers `{"verification_status": "SUCCESS"}` or `"FAILURE"`.
It is a fake: it knows no PayPal certificate and accepts only what the local key signed.
"""

import argparse
import base64
import json
import os
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key
from fake_http import JsonHandler, serve

TOKEN = "A21AA-local-invoke-only"
MARK = b',"webhook_event":'


def verified(raw, key_dir):
    """Whether the verify request's transmission is signed by the local key."""
    at = raw.find(MARK)
    if at < 0 or not raw.endswith(b"}"):
        return False
    fields = json.loads(raw[:at] + b"}")
    event = raw[at + len(MARK):-1]
    signed = "{}|{}|{}|{}".format(fields["transmission_id"], fields["transmission_time"],
                                  fields["webhook_id"], zlib.crc32(event) & 0xFFFFFFFF)
    with open(os.path.join(key_dir, "paypal-local.pub.der"), "rb") as f:
        key = load_der_public_key(f.read())
    try:
        key.verify(base64.b64decode(fields["transmission_sig"]), signed.encode(),
                   padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def handler(args):
    basic = "Basic " + base64.b64encode(f"{args.client_id}:{args.client_secret}".encode()).decode()

    class Handler(JsonHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/v1/oauth2/token":
                if self.headers.get("authorization") != basic:
                    return self.answer(401, {"error": "invalid_client"})
                return self.answer(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 32400})
            if self.path == "/v1/notifications/verify-webhook-signature":
                if self.headers.get("authorization") != f"Bearer {TOKEN}":
                    return self.answer(401, {"error": "invalid_token"})
                ok = verified(raw, args.key_dir)
                return self.answer(200, {"verification_status": "SUCCESS" if ok else "FAILURE"})
            return self.answer(404, {"name": "RESOURCE_NOT_FOUND"})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-dir", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    serve(args.port, handler(args))


if __name__ == "__main__":
    main()
