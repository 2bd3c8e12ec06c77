"""Invokes every file of events/ with `cargo lambda invoke` and asserts the outcome
events/expected.json states for it, in its order (scripts/lambda-invoke-check runs this once
`cargo lambda watch`, moto, the table and the feed queue are up).

    lambda_invoke_check.py start --expected events/expected.json --port PORT --work DIR
    lambda_invoke_check.py check --expected events/expected.json --port PORT --signed DIR --queue-url URL --watch-log WATCH_LOG
    (either phase: --port-for FUNCTION=PORT for a function another watch serves)

`start` starts each function named in expected.json with an event it refuses or ignores (a
webhook event without its signature: 400; an empty stream batch: no failures), so a build or
a cold start happens before any signature is made. `check`:
- events/ and expected.json must name the same files (expected.json aside), and DIR (what
  scripts/events made) must hold each of them.
- A webhook event: the first invoke answers exactly {statusCode: status, body: {event_id,
  state}}; the same file again {event_id, state: duplicate, detected_by}; a copy with one byte
  of its body changed the `tampered` answer.  The thin function's notification is checked so too; it runs in a
  watch of its own (`--port-for thin=PORT`), whose Stripe key reads scripts/fake_stripe.py.
- The relay's event: the response is exactly `response`, and the feed queue then holds exactly
  the `feed` messages (message_id and kind attributes, the body's schema and change_id).
- The emails function's SQS event: the response is exactly `response` and SES (moto) then
  holds `sent` messages to the job's recipient with `subject`; the same event again answers the
  same and sends nothing more (the email's claim).
- The api function's read-route event: the status is `status` and the body holds every field
  of `body_includes` with that value.
- The reconcile function's scheduled event: the response is exactly `response` (no Stripe key
  is configured here, so it answers that it skipped the run).
- The eventbridge function's SQS event (a Stripe event through Amazon EventBridge): the
  response is exactly `response` and the function's metric lines (EMF, in WATCH_LOG) count one
  more applied event at `family`; the same event again answers the same and counts one more
  duplicate and no applied event. A webhook sample of the same event after it answers
  `duplicate` at once (its `state`, with `detected_by`).

Exits 1 if any check failed; each check prints one line.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import time

import boto3


# How long one invoke may take before the check gives up on it: not a measure of speed, a guard
# against waiting forever (watch holds the invoke open while a function that failed at start-up
# is restarted). `start` may build a function that was not fresh.
START_LIMIT_SECS = 900
INVOKE_LIMIT_SECS = 120


def invoke(port, function, path, limit=INVOKE_LIMIT_SECS):
    """The function's answer to the event file, as JSON (cargo lambda invoke prints it). `port`
    is the watch's, or a {function: port} map with the default watch's under None."""
    if isinstance(port, dict):
        port = port.get(function, port[None])
    try:
        out = subprocess.run(
            ["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port), function, "--data-file", path],
            capture_output=True, text=True, check=False, timeout=limit)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"cargo lambda invoke {function}: no answer in {limit} s") from e
    if out.returncode != 0:
        raise RuntimeError(f"cargo lambda invoke {function} failed: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def answer(response):
    """(statusCode, body as JSON) of an API Gateway response; the body kept as text if not JSON."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        body = json.loads(body)
    except ValueError:
        pass
    return response.get("statusCode"), body


def tamper(path, into):
    """Writes the event at `path` to `into` with one character of the body's event id changed,
    in the body's own encoding (plain or base64)."""
    with open(path, encoding="utf-8") as f:
        event = json.load(f)
    encoded = event.get("isBase64Encoded", False)
    raw = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    at = raw.index(b'"id"') + 7  # inside the id's value: `"id": "evt_…`
    raw = raw[:at] + (b"Y" if raw[at:at + 1] == b"X" else b"X") + raw[at + 1:]
    event["body"] = base64.b64encode(raw).decode() if encoded else raw.decode()
    with open(into, "w", encoding="utf-8") as f:
        json.dump(event, f)
    return into


def drain(queue_url):
    """Every message on the queue, received and deleted, as the fields expected.json names."""
    sqs = boto3.client("sqs")
    seen = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1, MessageAttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return seen
        for m in messages:
            attrs = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
            body = json.loads(m["Body"])
            if body.get("change_id") != attrs.get("message_id"):
                raise RuntimeError(f"message {attrs.get('message_id')}: body change_id differs")
            seen.append({"message_id": attrs.get("message_id"), "kind": attrs.get("kind"),
                         "schema": body.get("schema")})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def moto_mails(endpoint, address):
    """Subjects of the messages moto's SES accepted for `address`, in order."""
    import urllib.request
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=60) as r:
        data = json.load(r)
    return [m.get("subject") for m in data.get("ses", {}).get("Message", [])
            if (m.get("destinations", {}).get("ToAddresses") or [None])[0] == address]


class Checks:
    def __init__(self, port):
        self.port = port
        self.failed = 0

    def expect(self, label, function, got, want, started):
        ok = got == want
        shown = json.dumps(got, sort_keys=True)
        print(f"{'ok  ' if ok else 'FAIL'}  {label:<48} {function:<13} {shown}"
              f" ({time.monotonic() - started:.2f}s)")
        if not ok:
            print(f"      expected {json.dumps(want, sort_keys=True)}")
            self.failed += 1

    def webhook(self, spec, entry, path, work):
        name, function = entry["file"], entry["function"]
        event_id = entry["event_id"]
        first = (entry["status"], {"event_id": event_id, "state": entry["state"]})
        if entry["state"] == "duplicate":  # recorded before by another path (EventBridge)
            first[1]["detected_by"] = entry["detected_by"]
        again = (spec["redelivery"]["status"],
                 {"event_id": event_id, "state": spec["redelivery"]["state"],
                  "detected_by": entry["detected_by"]})
        tampered = (spec["tampered"]["status"],
                    {"error": entry.get("tampered_error", spec["tampered"]["error"])})
        copy = tamper(path, os.path.join(work, "tampered-" + name))
        for label, data, want in [(name, path, first), ("again: " + name, path, again),
                                  ("tampered: " + name, copy, tampered)]:
            started = time.monotonic()
            got = list(answer(invoke(self.port, function, data)))
            self.expect(label, function, got, list(want), started)

    def response(self, entry, path):
        started = time.monotonic()
        got = invoke(self.port, entry["function"], path)
        self.expect(entry["file"], entry["function"], got, entry["response"], started)

    def relay(self, entry, path, queue_url):
        self.response(entry, path)
        started = time.monotonic()
        self.expect("feed queue after " + entry["file"], "sqs", drain(queue_url),
                    entry["feed"], started)


    def emails(self, entry, path):
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        want = [entry["subject"]] * entry["sent"]
        for label in (entry["file"], "again: " + entry["file"]):
            started = time.monotonic()
            got = invoke(self.port, entry["function"], path)
            self.expect(label, entry["function"], got, entry["response"], started)
            started = time.monotonic()
            self.expect("SES after " + label, "ses", moto_mails(endpoint, entry["to"]), want, started)

    def eventbridge(self, entry, path, watch_log):
        family = entry["family"]
        wants = [(entry["file"], {"EventsApplied": 1, "EventsRedelivered": 0}),
                 ("again: " + entry["file"], {"EventsRedelivered": 1, "EventsApplied": 0})]
        for label, counted in wants:
            before = emf_counts(watch_log, family)
            started = time.monotonic()
            got = invoke(self.port, entry["function"], path)
            self.expect(label, entry["function"], got, entry["response"], started)
            got = wait_for_counts(watch_log, family, before, counted)
            self.expect(f"metrics ({family}) after " + label, "emf", got, counted, started)

    def read(self, entry, path):
        started = time.monotonic()
        status, body = answer(invoke(self.port, entry["function"], path))
        shown = {k: body.get(k) for k in entry["body_includes"]} if isinstance(body, dict) else body
        self.expect(entry["file"], entry["function"], [status, shown],
                    [entry["status"], entry["body_includes"]], started)


def emf_counts(watch_log, family):
    """Each metric's total over the EMF lines (`_aws`) of `family` in the watch log so far."""
    totals = {}
    with open(watch_log, encoding="utf-8", errors="replace") as f:
        for line in f:
            start = line.find("{")
            if start < 0 or '"_aws"' not in line:
                continue
            try:
                doc = json.loads(line[start:])
            except ValueError:
                continue
            if not isinstance(doc, dict) or "_aws" not in doc or doc.get("Family") != family:
                continue
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + doc.get(metric["Name"], 0)
    return totals


def wait_for_counts(watch_log, family, before, wanted, limit=5.0):
    """The growth of the `wanted` metrics since `before`, once it reaches `wanted` or after
    `limit` seconds (the function's lines reach the log through watch's pipe)."""
    deadline = time.monotonic() + limit
    while True:
        now = emf_counts(watch_log, family)
        grown = {k: now.get(k, 0) - before.get(k, 0) for k in wanted}
        if grown == wanted or time.monotonic() > deadline:
            return grown
        time.sleep(0.1)


def listing_errors(events_dir, spec, signed):
    """What makes events/, expected.json and the signed copies disagree (empty if nothing)."""
    files = {n for n in os.listdir(events_dir) if n.endswith(".json") and n != "expected.json"}
    listed = [e["file"] for e in spec["events"]]
    errors = [f"{n}: no entry in expected.json" for n in sorted(files - set(listed))]
    errors += [f"{n}: in expected.json but not in events/" for n in sorted(set(listed) - files)]
    errors += [f"{n}: listed twice in expected.json" for n in sorted(set(listed))
               if listed.count(n) > 1]
    errors += [f"{n}: scripts/events does not make it" for n in sorted(files)
               if not os.path.exists(os.path.join(signed, n))]
    return errors


def start(spec, events_dir, port, work):
    """Invokes each function once with an event it refuses or ignores; False if one answered
    anything else."""
    first = {}
    for entry in spec["events"]:
        first.setdefault(entry["function"], entry["file"])
    checks = Checks(port)
    for function, name in first.items():
        path = os.path.join(work, f"start-{function}.json")
        if function in ("relay", "emails", "eventbridge"):
            event, want = {"Records": []}, {"batchItemFailures": []}
        elif function == "api":
            with open(os.path.join(events_dir, name), encoding="utf-8") as f:
                event = json.load(f)
            event["rawPath"] = event["requestContext"]["http"]["path"] = "/no/such/route"
            want = [404, ""]
        elif function == "reconcile":
            event = {"source": "billing.reconcile"}
            want = next(e["response"] for e in spec["events"] if e["function"] == "reconcile")
        else:
            with open(os.path.join(events_dir, name), encoding="utf-8") as f:
                event = json.load(f)
            if function == "paypal":
                event["headers"].pop("paypal-transmission-sig", None)
                want = [400, {"error": "missing PAYPAL-TRANSMISSION-SIG header"}]
            else:
                event["headers"].pop("stripe-signature", None)
                want = [400, {"error": "missing Stripe-Signature header"}]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(event, f)
        started = time.monotonic()
        try:
            got = invoke(port, function, path, START_LIMIT_SECS)
        except RuntimeError as e:
            print(f"FAIL  start {function}: {e}")
            return False
        if function not in ("relay", "emails", "reconcile", "eventbridge"):
            got = list(answer(got))
        checks.expect("start " + function, function, got, want, started)
    return checks.failed == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=["start", "check"])
    parser.add_argument("--expected", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--work", help="start: where to write its events")
    parser.add_argument("--signed", help="check: the events scripts/events made")
    parser.add_argument("--queue-url", help="check: the relay's feed queue")
    parser.add_argument("--watch-log", help="check: cargo lambda watch's log (the functions' metric lines)")
    parser.add_argument("--port-for", action="append", default=[], metavar="FUNCTION=PORT",
                        help="a function served by another watch (the thin function's)")
    args = parser.parse_args()
    ports = {None: args.port}
    for pair in args.port_for:
        function, _, port = pair.partition("=")
        ports[function] = int(port)
    with open(args.expected, encoding="utf-8") as f:
        spec = json.load(f)
    events_dir = os.path.dirname(os.path.abspath(args.expected))
    if args.phase == "start":
        return 0 if start(spec, events_dir, ports, args.work) else 1
    errors = listing_errors(events_dir, spec, args.signed)
    for e in errors:
        print(f"FAIL  {e}")
    if errors:
        return 1
    checks = Checks(ports)
    for entry in spec["events"]:
        path = os.path.join(args.signed, entry["file"])
        try:
            if entry["function"] == "relay":
                checks.relay(entry, path, args.queue_url)
            elif entry["function"] == "emails":
                checks.emails(entry, path)
            elif entry["function"] == "api":
                checks.read(entry, path)
            elif entry["function"] == "reconcile":
                checks.response(entry, path)
            elif entry["function"] == "eventbridge":
                checks.eventbridge(entry, path, args.watch_log)
            else:
                checks.webhook(spec, entry, path, args.signed)
        except (RuntimeError, ValueError, KeyError) as e:
            print(f"FAIL  {entry['file']}: {e}")
            checks.failed += 1
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
