"""Checks template.yaml beyond what cfn-lint knows (run by scripts/check-template).

    python scripts/check_template.py template.yaml METRICS_JSON TRANSLATED_OUT TABLE_JSON

1. Translates the SAM template offline with aws-sam-translator (no AWS call) into
   TRANSLATED_OUT, so cfn-lint can lint the CloudFormation that would really be deployed.
2. Each dashboard's body (the main one's and an optional part's own) is valid JSON once `${...}` substitutions are resolved, and each of its
   substitutions names a parameter, a resource (or resource attribute) or a pseudo parameter.
3. Every metric of the dashboard and of every alarm is one the code emits (METRICS_JSON, the
   output of `billing metrics`: namespace, the `Family` dimension and its values) or a service
   metric from the short list below, with that service's dimension.
4. Each webhook function (the four families' and the thin events' one) serves POST
   /webhooks/stripe/<its endpoint> without authorisation, reads exactly its own signing secret
   through `STRIPE_WEBHOOK_SECRETS_<ENDPOINT>_ARN`, and may read only that secret (and the
   optional API key); every other route is IAM-authorised.
   The PayPal function serves POST /webhooks/paypal without authorisation, takes its webhook id
   from the PaypalWebhookId parameter, and may read no Stripe signing secret.
6. Every webhook endpoint's parked events and rejected signatures are alarmed (the four Stripe
   families and `paypal` summed, `thin` by its own alarms); the throttle alarm sums every function
   (a function under a Condition: an alarm under the same condition reads its throttles).
7. No environment variable carries a secret value (only `..._ARN` references; an inline
   secret variable may be declared empty, so `sam local invoke --env-vars` can set it).
8. Least privilege: each function's role in the translated template grants exactly what
   functions/<dir>/permissions.toml lists (scripts/permissions.py): no action, resource,
   partition key or managed policy beyond it, and nothing of it missing.

9. The Table is the one the code creates (TABLE_JSON, `billing create-table --print`): keys,
   attribute types, indexes and projections, stream and time to live (scripts/table_schema.py).
10. One build serves every function: each is built by the root Makefile (`BuildMethod:
   makefile`, `ContextPath: .`), whose `build-<LogicalId>` target (asked with `make -n`, as
   `sam build` would run it) builds every binary and copies its CodeUri's package's binary.

Prints one line per problem and exits 1 if there is any.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import permissions  # noqa: E402  (scripts/permissions.py, beside this file)
import table_schema  # noqa: E402  (scripts/table_schema.py)

# Service metrics the dashboard and alarms may use, with the one dimension each is read by.
SERVICE_METRICS = {
    "AWS/Lambda": ({"IteratorAge", "Duration", "Errors", "Throttles", "Invocations"}, "FunctionName"),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}, "QueueName"),
    "AWS/ApiGateway": ({"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}, "ApiId"),
    "AWS/DynamoDB": (
        {"ConsumedWriteCapacityUnits", "ConsumedReadCapacityUnits", "WriteThrottleEvents", "ReadThrottleEvents"},
        "TableName",
    ),
}
FAMILIES = ["checkout", "subscription", "invoice", "charge"]
# Stripe's webhook endpoints, each with its function and secret: the families and thin events.
STRIPE_ENDPOINTS = FAMILIES + ["thin"]
# Every webhook endpoint's dimension value: Stripe's and PayPal's one endpoint.
WEBHOOK_FAMILIES = STRIPE_ENDPOINTS + ["paypal"]
PSEUDO = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}

problems = []


def problem(msg):
    problems.append(msg)


class NoManagedPolicies:
    """The template names no managed policy by name, so the translator needs no IAM lookup."""

    def load(self):
        return {}


def translate(template, out_path):
    # The translator fills AWS::Region from boto's session; any region does, nothing is called.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # As `sam package` would after `sam build`: each local CodeUri becomes an S3 object.
    for logical, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://packaged-by-sam/{logical}.zip"
    translated = transform(template, {}, NoManagedPolicies())
    with open(out_path, "w") as f:
        json.dump(translated, f, indent=1, default=str)
    return translated


def check_metric(where, namespace, name, dims, emitted):
    """dims: list of (name, value) pairs; value None when it is a reference."""
    if namespace == "${MetricsNamespace}" or namespace == {"Ref": "MetricsNamespace"}:
        if name not in emitted["metrics"]:
            problem(f"{where}: {name} is not a metric the code emits")
        if [d for d, _ in dims] != [emitted["dimension"]]:
            problem(f"{where}: {name} must carry exactly the dimension {emitted['dimension']}, has {dims}")
        elif dims[0][1] not in emitted["dimension_values"]:
            problem(f"{where}: {name} has {emitted['dimension']}={dims[0][1]}, never emitted")
        return
    known = SERVICE_METRICS.get(namespace)
    if known is None:
        problem(f"{where}: unexpected namespace {namespace}")
    elif name not in known[0]:
        problem(f"{where}: {namespace} {name} is not in the checked list")
    elif [d for d, _ in dims] != [known[1]]:
        problem(f"{where}: {namespace} {name} should be read by {known[1]}, has {dims}")


def check_dashboards(template, emitted):
    """Every dashboard of the template (the main one, and the optional parts' own)."""
    return sum(check_dashboard(template, emitted, logical)
               for logical, res in template["Resources"].items()
               if res["Type"] == "AWS::CloudWatch::Dashboard")


def check_dashboard(template, emitted, logical="Dashboard"):
    body = template["Resources"][logical]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(template["Parameters"]) | set(template["Resources"]) | PSEUDO
    for ref in re.findall(r"\$\{([^}]*)\}", body):
        if ref not in names and ref.split(".")[0] not in template["Resources"]:
            problem(f"{logical}: ${{{ref}}} names nothing in the template")
    # Keep the namespace reference recognisable; any other substitution becomes a placeholder.
    resolved = re.sub(r"\$\{(?!MetricsNamespace\})[^}]*\}", "X", body)
    try:
        dash = json.loads(resolved)
    except json.JSONDecodeError as e:
        problem(f"{logical}: not valid JSON: {e}")
        return 0
    count = 0
    for w in dash["widgets"]:
        for m in w.get("properties", {}).get("metrics", []):
            parts = [p for p in m if not isinstance(p, dict)]
            namespace, name, rest = parts[0], parts[1], parts[2:]
            dims = list(zip(rest[0::2], rest[1::2]))
            check_metric(f"{logical} '{w['properties'].get('title')}'", namespace, name, dims, emitted)
            count += 1
    return count


def alarm_metrics(props):
    if "MetricName" in props:
        yield props["Namespace"], props["MetricName"], props.get("Dimensions", [])
    for m in props.get("Metrics", []):
        stat = m.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def check_alarms(template, emitted):
    count = 0
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for namespace, name, dims in alarm_metrics(res["Properties"]):
            pairs = [(d["Name"], d["Value"] if isinstance(d["Value"], str) else None) for d in dims]
            check_metric(f"alarm {logical}", namespace, name, pairs, emitted)
            count += 1
    return count


def check_functions(template):
    resources = template["Resources"]
    for fam in STRIPE_ENDPOINTS:
        logical = fam.capitalize() + "Function"
        props = resources[logical]["Properties"]
        secret = fam.capitalize() + "WebhookSecret"
        env = props["Environment"]["Variables"]
        want = f"STRIPE_WEBHOOK_SECRETS_{fam.upper()}_ARN"
        if env.get(want) != {"Ref": secret}:
            problem(f"{logical}: {want} must be !Ref {secret}")
        # A family's Connect endpoint and its secret, only while StripeConnect is Enabled (thin
        # notifications of connected accounts come to the thin destination, with `context`).
        connect = fam.capitalize() + "ConnectWebhookSecret"
        tails = ("",)
        if fam in FAMILIES:
            tails = ("", "/connect")
            want_connect = f"STRIPE_WEBHOOK_SECRETS_{fam.upper()}_CONNECT_ARN"
            if env.get(want_connect) != {"Fn::If": ["HasStripeConnect", {"Ref": connect}, {"Ref": "AWS::NoValue"}]}:
                problem(f"{logical}: {want_connect} must be !If [HasStripeConnect, !Ref {connect}, !Ref AWS::NoValue]")
            if resources.get(connect, {}).get("Condition") != "HasStripeConnect":
                problem(f"{connect}: must exist under Condition HasStripeConnect")
        events = list(props["Events"].values())
        routes = [(e["Properties"]["Method"], e["Properties"]["Path"], e["Properties"].get("Auth")) for e in events]
        wanted = [("POST", f"/webhooks/stripe/{fam}{tail}", {"Authorizer": "NONE"}) for tail in tails]
        if sorted(routes, key=str) != sorted(wanted, key=str):
            problem(f"{logical}: routes {routes}, expected only {[w[1] for w in wanted]} (POST, without authoriser)")
        readable = json.dumps([s for p in props["Policies"] if "Statement" in p for s in p["Statement"] if "secretsmanager:GetSecretValue" in json.dumps(s)])
        own = {secret, connect}
        others = [s for s in resources if s.endswith("WebhookSecret") and s not in own and f'"{s}"' in readable]
        if others or f'"{secret}"' not in readable:
            problem(f"{logical}: must read its own secrets {sorted(own)} only (also reads {others})")
    check_paypal_function(resources)
    api = template["Resources"]["HttpApi"]["Properties"]["Auth"]
    if api != {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}:
        problem(f"HttpApi: read routes must default to AWS_IAM, auth is {api}")
    for logical, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for e in res["Properties"].get("Events", {}).values():
            if e["Type"] == "HttpApi" and not e["Properties"]["Path"].startswith("/webhooks/"):
                if e["Properties"].get("Auth"):
                    problem(f"{logical}: read route {e['Properties']['Path']} must keep the IAM default")
        for k, v in res["Properties"].get("Environment", {}).get("Variables", {}).items():
            # An inline secret variable may only be declared empty (for `sam local invoke`).
            if ("SECRET" in k or "KEY" in k and "METADATA" not in k) and not k.endswith("_ARN") and v != "":
                problem(f"{logical}: {k} looks like a secret value in the environment")
            if isinstance(v, str) and re.search(r"(whsec|sk|rk)_(live|test)?_?[A-Za-z0-9]{8,}", v):
                problem(f"{logical}: {k} holds what looks like a secret")


def check_paypal_function(resources):
    props = resources["PaypalFunction"]["Properties"]
    env = props["Environment"]["Variables"]
    if env.get("PAYPAL_WEBHOOK_ID") != {"Ref": "PaypalWebhookId"}:
        problem("PaypalFunction: PAYPAL_WEBHOOK_ID must be !Ref PaypalWebhookId")
    events = list(props["Events"].values())
    routes = [(e["Properties"]["Method"], e["Properties"]["Path"], e["Properties"].get("Auth")) for e in events]
    if routes != [("POST", "/webhooks/paypal", {"Authorizer": "NONE"})]:
        problem(f"PaypalFunction: routes {routes}, expected only POST /webhooks/paypal without authoriser")
    readable = json.dumps(props["Policies"])
    stripe = [s for s in resources if s.endswith("WebhookSecret") and s in readable]
    if stripe:
        problem(f"PaypalFunction: must read no Stripe signing secret (reads {stripe})")


def check_alarm_coverage(template):
    """The alarms leave no webhook endpoint (or function) out."""
    resources = template["Resources"]
    alarmed = {
        (name, d["Value"])
        for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
        for _, name, dims in alarm_metrics(r["Properties"])
        for d in dims if isinstance(d["Value"], str)
    }
    for metric in ["EventsParked", "SignatureRejected"]:
        missing = [f for f in WEBHOOK_FAMILIES if (metric, f) not in alarmed]
        if missing:
            problem(f"alarms: {metric} of {missing} is in no alarm")
    functions = [k for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    seen = {json.dumps(d["Value"]) for _, _, dims in alarm_metrics(resources["LambdaThrottleAlarm"]["Properties"]) for d in dims}
    # A function of an optional part (Condition) cannot be named there: an alarm under the same
    # condition must watch its throttles instead.
    for r in resources.values():
        if r["Type"] == "AWS::CloudWatch::Alarm" and r.get("Condition"):
            seen |= {json.dumps(d["Value"]) for _, name, dims in alarm_metrics(r["Properties"])
                     if name == "Throttles" for d in dims
                     if isinstance(d["Value"], dict)
                     and resources.get(d["Value"].get("Ref", ""), {}).get("Condition") == r["Condition"]}
    missing = [f for f in functions if json.dumps({"Ref": f}) not in seen]
    if missing:
        problem(f"LambdaThrottleAlarm: throttles of {missing} are not summed")


def check_builds(template, root):
    binaries = []
    for logical, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            with open(os.path.join(root, res["Properties"]["CodeUri"], "Cargo.toml"), "rb") as f:
                binaries.append((logical, res.get("Metadata", {}), tomllib.load(f)["package"]["name"]))
    for logical, meta, binary in binaries:
        if meta != {"BuildMethod": "makefile", "ContextPath": "."}:
            problem(f"{logical}: must be built by the root Makefile (BuildMethod: makefile, ContextPath: .), has {meta}")
            continue
        # As sam build runs it: from a scratch directory, the Makefile named, ARTIFACTS_DIR set.
        with tempfile.TemporaryDirectory() as scratch:
            run = subprocess.run(
                ["make", "--no-print-directory", "-n", "--makefile", os.path.join(root, "Makefile"),
                 f"build-{logical}", "ARTIFACTS_DIR=/artifacts"],
                cwd=scratch, capture_output=True, text=True)
        recipe = re.sub(r"\\\n\s*", " ", run.stdout)  # continued lines joined
        builds = [line for line in recipe.splitlines() if "cargo lambda build" in line]
        copies = re.findall(r'^cp "[^"]*/lambda/([^/"]+)/bootstrap" "/artifacts/bootstrap"$', recipe, re.M)
        if run.returncode != 0:
            problem(f"{logical}: make build-{logical} fails: {run.stderr.strip()}")
        elif len(builds) != 1 or sorted(re.findall(r"--bin (\S+)", builds[0])) != sorted(b for _, _, b in binaries):
            problem(f"{logical}: make build-{logical} must run one cargo lambda build of every function, runs {builds}")
        elif copies != [binary]:
            problem(f"{logical}: make build-{logical} must copy the {binary} binary, copies {copies}")


def main():
    path, metrics_path, out_path, table_path = sys.argv[1:5]
    template, matches = decode(path)
    if matches:
        for m in matches:
            problem(f"cannot read {path}: {m}")
        return
    with open(metrics_path) as f:
        emitted = json.load(f)
    check_functions(template)
    dashboard = check_dashboards(template, emitted)
    alarms = check_alarms(template, emitted)
    check_alarm_coverage(template)
    source = json.loads(json.dumps(template, default=str))
    translated = translate(json.loads(json.dumps(template, default=str)), out_path)
    root = os.path.dirname(os.path.abspath(path))
    with open(table_path) as f:
        for p in table_schema.check(source["Resources"]["Table"]["Properties"], json.load(f)):
            problem(p)
    for p in permissions.check(source, translated, root):
        problem(p)
    check_builds(source, root)
    kinds = sorted({r["Type"] for r in translated["Resources"].values()})
    print(f"check_template: {dashboard} dashboard metrics and {alarms} alarm metrics checked; "
          f"translated to {len(translated['Resources'])} resources ({len(kinds)} types) in {out_path}")


if __name__ == "__main__":
    main()
    for p in problems:
        print(f"check_template: {p}")
    sys.exit(1 if problems else 0)
