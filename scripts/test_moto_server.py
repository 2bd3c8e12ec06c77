#!/usr/bin/env python3
"""Self-test for scripts/moto_server.py (the serialising moto launcher).

Starts the launcher on a free loopback port in a subprocess (or uses --endpoint),
then checks that DynamoDB behaves serialisably under concurrent load:

* 50 threads fire TransactWriteItems at once, each = conditional put of the SAME
  item (attribute_not_exists(pk)) + put of its own side item. Exactly one may
  succeed; the other 49 must get TransactionCanceledException whose reasons are
  [ConditionalCheckFailed, None]; exactly one side item (the winner's) may exist.
* 50 threads each increment one counter once by read-modify-write (consistent
  GetItem, then a put conditioned on the version read), retrying on conflict.
  The final counter and version must both be 50 (no lost update). Done twice:
  with TransactWriteItems and with plain PutItem.

Plus: the health endpoint, refusal of non-loopback --host, SQS / SES / Secrets
Manager reachable on the same port, and /moto-api/reset + data.json.

Usage:  .venv/bin/python scripts/test_moto_server.py [--endpoint URL] [--rounds N]
(with another interpreter it bootstraps .venv via scripts/ensure-venv and re-runs
itself there). Prints "N passed, M failed"; exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
LAUNCHER = SCRIPTS / "moto_server.py"

# Run in the repo's venv (pinned moto/boto3, see requirements-dev.txt): when started
# with any other interpreter, bootstrap the venv and re-run there.
_VENV = REPO / ".venv"
if Path(sys.prefix).resolve() != _VENV.resolve() and not os.environ.get("_TEST_MOTO_REEXEC"):
    subprocess.run([str(SCRIPTS / "ensure-venv")], check=True)
    os.environ["_TEST_MOTO_REEXEC"] = "1"
    venv_python = str(_VENV / "bin" / "python")
    os.execv(venv_python, [venv_python, __file__, *sys.argv[1:]])

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

N = 50
REGION = "us-east-1"
# Dummy credentials only: never talk to real AWS.
for k, v in {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "test",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}.items():
    os.environ[k] = v
for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
    os.environ.pop(k, None)


# ---------------------------------------------------------------------------
# launcher process


class Launcher:
    """Runs scripts/moto_server.py --port 0 and reads the port from its ready line."""

    def __init__(self) -> None:
        self.log = tempfile.NamedTemporaryFile(
            prefix="test-moto-launcher-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", "0", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        ready = line[0].strip() if line else ""
        prefix = "moto ready on "
        if not ready.startswith(prefix):
            log = self.log_text()
            self.stop()
            raise RuntimeError(f"launcher did not become ready (got {ready!r}):\n{log}")
        self.endpoint = ready[len(prefix):]

    def log_text(self) -> str:
        try:
            return Path(self.log.name).read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# ---------------------------------------------------------------------------
# helpers


def client(endpoint: str, service: str):
    cfg = Config(
        region_name=REGION,
        max_pool_connections=N + 10,
        # No SDK retries: every attempt is counted and classified by the test itself.
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=cfg)


def create_table(ddb, name: str, filler: int = 0) -> None:
    """Create a table and put `filler` unrelated items in it.

    The filler matters: moto's TransactWriteItems deep-copies every table it touches
    before running (to roll back on cancellation) and restores that copy when the
    transaction is cancelled. Unserialised, a cancelled transaction therefore wipes
    out whatever other requests committed in between, and the bigger the table the
    longer that window. With a near-empty table the race is rarely hit."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    for start in range(0, filler, 25):
        ddb.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": {"pk": {"S": f"filler#{j}"}, "pad": {"S": "x" * 200}}}}
                    for j in range(start, min(start + 25, filler))
                ]
            }
        )


def run_concurrently(fn, n: int = N):
    """Run fn(i) for i in range(n) on n threads released together by a barrier.
    Returns the list of results (exceptions are returned, not raised)."""
    barrier = threading.Barrier(n)

    def wrapped(i):
        barrier.wait(30)
        try:
            return fn(i)
        except Exception as e:  # noqa: BLE001 - classified by the caller
            return e

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(wrapped, range(n)))


def error_code(e: BaseException) -> str:
    if isinstance(e, ClientError):
        return e.response.get("Error", {}).get("Code", "?")
    return type(e).__name__


def cancellation_codes(e: ClientError) -> list[str]:
    return [r.get("Code", "?") for r in e.response.get("CancellationReasons", [])]


# ---------------------------------------------------------------------------
# checks (each raises AssertionError on failure)


def check_health(endpoint: str, launcher_pid: int) -> None:
    with urllib.request.urlopen(f"{endpoint}/_launcher/health", timeout=10) as r:
        assert r.status == 200, r.status
        body = json.load(r)
    assert body.get("status") == "ok", body
    pins = re.findall(r"^moto(?:\[[^\]]*\])?==(\S+)", (SCRIPTS / "requirements-dev.txt").read_text(), re.M)
    assert body.get("moto") in pins, f"launcher runs moto {body.get('moto')}, pinned: {pins}"
    assert body.get("pid") == launcher_pid, body


def check_refuses_non_loopback(_endpoint: str) -> None:
    for host in ("0.0.0.0", "::", "8.8.8.8"):
        p = subprocess.run(
            [sys.executable, str(LAUNCHER), "--host", host, "--port", "0"],
            capture_output=True, text=True, timeout=60,
        )
        assert p.returncode != 0, f"--host {host} was accepted"
        assert "refusing to bind" in p.stderr, p.stderr
        assert "moto ready" not in p.stdout, p.stdout


def check_conditional_put_race(endpoint: str, table: str) -> None:
    ddb = client(endpoint, "dynamodb")

    def attempt(i: int):
        return ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "the-item"}, "owner": {"N": str(i)}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": f"side#{i}"}, "owner": {"N": str(i)}},
                    }
                },
            ]
        )

    results = run_concurrently(attempt)
    winners = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    losers = [(i, r) for i, r in enumerate(results) if isinstance(r, Exception)]
    bad = [
        (i, error_code(r), cancellation_codes(r) if isinstance(r, ClientError) else None)
        for i, r in losers
        if not (
            isinstance(r, ClientError)
            and error_code(r) == "TransactionCanceledException"
            and cancellation_codes(r) == ["ConditionalCheckFailed", "None"]
        )
    ]

    items = []
    kwargs = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    side = sorted(it["pk"]["S"] for it in items if it["pk"]["S"].startswith("side#"))
    main = [it for it in items if it["pk"]["S"] == "the-item"]

    problems = []
    if len(winners) != 1:
        problems.append(f"{len(winners)} transactions succeeded (want 1): {winners}")
    if bad:
        problems.append(f"{len(bad)} failures were not ConditionalCheckFailed cancellations: {bad[:5]}")
    if len(side) != 1:
        problems.append(f"{len(side)} side items exist (want 1): {side[:10]}")
    if len(main) != 1:
        problems.append(f"{len(main)} copies of the contested item")
    elif len(winners) == 1:
        owner = main[0]["owner"]["N"]
        if owner != str(winners[0]) or side != [f"side#{winners[0]}"]:
            problems.append(f"winner {winners[0]} but item owner {owner}, side items {side}")
    assert not problems, "; ".join(problems)


def check_counter(endpoint: str, table: str, use_transaction: bool) -> None:
    ddb = client(endpoint, "dynamodb")
    key = {"pk": {"S": "counter"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "0"}, "version": {"N": "0"}})
    deadline = time.monotonic() + 180
    conflicts = [0]
    count_lock = threading.Lock()

    def increment(i: int) -> int:
        rng = random.Random(i)
        for attempt in range(1, 1001):
            if time.monotonic() > deadline:
                raise TimeoutError(f"thread {i} gave up after {attempt - 1} attempts")
            cur = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
            n, v = int(cur["n"]["N"]), int(cur["version"]["N"])
            put = {
                "TableName": table,
                "Item": {**key, "n": {"N": str(n + 1)}, "version": {"N": str(v + 1)}},
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(v)}},
            }
            try:
                if use_transaction:
                    ddb.transact_write_items(TransactItems=[{"Put": put}])
                else:
                    ddb.put_item(**put)
                return attempt
            except ClientError as e:
                code = error_code(e)
                if code not in (
                    "ConditionalCheckFailedException",
                    "TransactionCanceledException",
                    "TransactionConflictException",
                ):
                    raise
                with count_lock:
                    conflicts[0] += 1
                time.sleep(rng.uniform(0, 0.005 * min(attempt, 10)))
        raise RuntimeError(f"thread {i} never succeeded")

    t0 = time.monotonic()
    results = run_concurrently(increment)
    elapsed = time.monotonic() - t0
    errors = [(i, repr(r)) for i, r in enumerate(results) if isinstance(r, Exception)]
    final = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    n, v = int(final["n"]["N"]), int(final["version"]["N"])
    print(
        f"    ({'TransactWriteItems' if use_transaction else 'PutItem'}: "
        f"{sum(r for r in results if isinstance(r, int))} write attempts, "
        f"{conflicts[0]} conflicts, {elapsed:.1f}s)"
    )
    assert not errors, f"{len(errors)} threads failed: {errors[:3]}"
    assert (n, v) == (N, N), f"counter={n} version={v}, want {N} (lost updates)"


def check_other_services(endpoint: str) -> None:
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="launcher-selftest")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in msgs] == ["hello"], msgs

    sm = client(endpoint, "secretsmanager")
    sm.create_secret(Name="launcher/selftest", SecretString="s3cr3t")
    assert sm.get_secret_value(SecretId="launcher/selftest")["SecretString"] == "s3cr3t"

    ses = client(endpoint, "ses")
    ses.verify_email_identity(EmailAddress="billing@example.com")
    mid = ses.send_email(
        Source="billing@example.com",
        Destination={"ToAddresses": ["customer@example.com"]},
        Message={"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "body"}}},
    )["MessageId"]
    assert mid


def check_reset(endpoint: str, table: str) -> None:
    ddb = client(endpoint, "dynamodb")
    assert table in ddb.list_tables()["TableNames"]
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
    tables = ddb.list_tables()["TableNames"]
    assert table not in tables, tables
    # data.json after the reset: moto renders it slowly for big tables (~20 s for a
    # few thousand items), so look at it only once the state is small.
    create_table(ddb, "after-reset")
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=60) as r:
        assert r.status == 200
        data = json.load(r)
    assert "after-reset" in json.dumps(data.get("dynamodb", {})), list(data)


# ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", help="test this already-running server instead of starting the launcher")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the concurrency checks N times")
    ap.add_argument("--filler", type=int, default=500, help="unrelated items pre-loaded into each contested table")
    args = ap.parse_args()

    launcher = None
    passed = failed = 0
    try:
        if args.endpoint:
            endpoint = args.endpoint.rstrip("/")
        else:
            t0 = time.monotonic()
            launcher = Launcher()
            endpoint = launcher.endpoint
            print(f"launcher up at {endpoint} in {time.monotonic() - t0:.1f}s")
        ddb = client(endpoint, "dynamodb")

        checks = []
        if not args.endpoint:
            checks += [("health endpoint", lambda: check_health(endpoint, launcher.proc.pid))]
            checks += [("non-loopback --host refused", lambda: check_refuses_non_loopback(endpoint))]
        for r in range(args.rounds):
            tag = f" [round {r + 1}]" if args.rounds > 1 else ""
            race_t, ctr_t, put_t = f"race{r}", f"ctrtx{r}", f"ctrput{r}"
            checks += [
                (f"{N} concurrent conditional TransactWriteItems: exactly one wins{tag}",
                 lambda t=race_t: (create_table(ddb, t, args.filler), check_conditional_put_race(endpoint, t))),
                (f"{N} concurrent read-modify-write increments via TransactWriteItems{tag}",
                 lambda t=ctr_t: (create_table(ddb, t, args.filler), check_counter(endpoint, t, True))),
                (f"{N} concurrent read-modify-write increments via PutItem{tag}",
                 lambda t=put_t: (create_table(ddb, t, args.filler), check_counter(endpoint, t, False))),
            ]
        checks += [
            ("SQS, Secrets Manager, SES on the same port", lambda: check_other_services(endpoint)),
            ("moto-api reset + data.json", lambda: check_reset(endpoint, "race0")),
        ]

        for name, fn in checks:
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                failed += 1
                print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {e}")
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
            else:
                passed += 1
                print(f"ok   {name} ({time.monotonic() - t0:.1f}s)")
    except Exception:  # noqa: BLE001 - setup failure
        traceback.print_exc()
        failed += 1
    finally:
        if launcher is not None:
            if failed:
                print("--- launcher log (tail) ---\n" + launcher.log_text())
            launcher.stop()

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
