"""A stand-in for the two Stripe API reads the thin function makes, on 127.0.0.1, for
scripts/lambda-invoke-check, and nothing else.

    fake_stripe.py --port PORT --key KEY --fixtures shared/tests/fixtures

- `GET /v2/core/events/{id}`: the fetched event of each thin fixture
  (`stripe-thin/NN_….event.json`);
- `GET` of each such event's `related_object.url` (`/v1/subscriptions/sub_life1`, …): the
  `data.object` of its snapshot twin, the lifecycle file with the same `NN_` prefix
  (`stripe/lifecycle/NN_…`), as the thin fixtures' README pairs them.
Every request needs `Authorization: Bearer KEY` (401 otherwise); anything else is 404 with a
Stripe-shaped error. It is a fake: it knows only these fixtures, and never changes them.
"""

import argparse
import glob
import json
import os

from fake_http import JsonHandler, serve


def answers(fixtures):
    """Path -> JSON answer, from the thin fixtures and their lifecycle twins."""
    known = {}
    for path in sorted(glob.glob(os.path.join(fixtures, "stripe-thin", "*.event.json"))):
        with open(path, encoding="utf-8") as f:
            event = json.load(f)
        prefix = os.path.basename(path)[:3]  # "02_"
        twins = glob.glob(os.path.join(fixtures, "stripe", "lifecycle", prefix + "*.json"))
        if len(twins) != 1:
            raise SystemExit(f"{path}: expected one lifecycle twin {prefix}*, found {twins}")
        with open(twins[0], encoding="utf-8") as f:
            twin = json.load(f)
        known[f"/v2/core/events/{event['id']}"] = event
        known[event["related_object"]["url"]] = twin["data"]["object"]
    return known


def handler(known, key):
    class Handler(JsonHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.headers.get("authorization") != f"Bearer {key}":
                self.answer(401, {"error": {"type": "invalid_request_error",
                                            "message": "Invalid API Key provided"}})
                return
            path = self.path.split("?", 1)[0]
            if path in known:
                self.answer(200, known[path])
            else:
                self.answer(404, {"error": {"type": "invalid_request_error",
                                            "message": f"No such resource: {path}"}})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--fixtures", required=True)
    args = parser.parse_args()
    serve(args.port, handler(answers(args.fixtures), args.key))


if __name__ == "__main__":
    main()
