"""Least privilege, checked: each function's role against the list kept beside its code.

Used by scripts/check_template.py on the template as aws-sam-translator translated it (the roles
SAM really creates, its own additions included) and tested by scripts/test_permissions.py.

A function's list is functions/<dir>/permissions.toml, <dir> being its CodeUri (docs/OPERATIONS.md "Least
privilege" describes the format). Its grants and the role's must be equal: a grant of the role
beyond the list is an extra (the role may do what the code never does), one of the list missing
from the role is a call the code makes that AWS would deny. Grants are compared as:

- DynamoDB: (resource, action) -> the partition-key patterns of its `dynamodb:LeadingKeys`
  condition (ForAllValues:StringLike) and the names of its `dynamodb:Attributes` condition, if
  any. One statement per (resource, action): IAM evaluates each statement alone, so a
  BatchGetItem whose keys were split over two statements would be denied.
- any other service: (action, resource), the resource named by its logical id or parameter
  (`!Ref X`, `!GetAtt X.Arn`) or by its ARN's tail (`identity/${EmailFrom}`).
- the managed policies SAM attaches (by name), and the fences that keep what they allow on
  every resource to the function's own (`Deny` with `NotResource`: `[platform.only]`).

A conditional resource or policy (`!If`) counts as granted: both branches are compared.
"""

import json
import os
import re
import tomllib

# Condition operator and keys a DynamoDB statement may use; anything else cannot be reasoned
# about here, so it is a problem rather than a silent pass.
DYNAMO_CONDITION = "ForAllValues:StringLike"
DYNAMO_KEYS = {"dynamodb:LeadingKeys": "keys", "dynamodb:Attributes": "attributes"}
TABLE = "Table"
ARN_HEAD = re.compile(r"^arn:\$\{AWS::Partition\}:[a-z0-9-]+:\$\{AWS::Region\}:\$\{AWS::AccountId\}:")
MANAGED = re.compile(r"^arn:(aws|\$\{AWS::Partition\}):iam::aws:policy/(service-role/)?")


class Grants:
    """What a role allows, or what a list says the code calls."""

    def __init__(self):
        self.dynamo = {}  # (resource, action) -> {"keys": frozenset|None, "attributes": frozenset|None}
        self.calls = set()  # (action, resource)
        self.managed = set()
        self.only = {}  # action -> frozenset: a Deny on every other resource (NotResource)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _resources(value, where, problems):
    """The names a Resource element grants: every branch of an `!If`, no `AWS::NoValue`."""
    out = []
    for r in _as_list(value):
        if isinstance(r, dict) and "Fn::If" in r:
            for branch in r["Fn::If"][1:]:
                out += _resources(branch, where, problems)
        elif r == {"Ref": "AWS::NoValue"}:
            continue
        elif isinstance(r, dict) and "Ref" in r:
            out.append(r["Ref"])
        elif isinstance(r, dict) and "Fn::GetAtt" in r:
            att = r["Fn::GetAtt"]
            att = att.split(".") if isinstance(att, str) else att
            if att[1:] == ["StreamArn"]:
                out.append(f"{att[0]}/stream")
                continue
            if att[1:] != ["Arn"]:
                problems.append(f"{where}: resource {json.dumps(r)} is not an ARN")
            out.append(att[0])
        elif isinstance(r, dict) and "Fn::Sub" in r and isinstance(r["Fn::Sub"], str):
            sub = r["Fn::Sub"]
            if sub.startswith("${Table.Arn}"):
                out.append(TABLE + sub[len("${Table.Arn}"):])
            else:
                out.append(ARN_HEAD.sub("", sub))
        elif isinstance(r, str):
            out.append(r)
        else:
            problems.append(f"{where}: cannot read resource {json.dumps(r)}")
    return out


def _dynamo_condition(condition, where, problems):
    found = {"keys": None, "attributes": None}
    for op, keys in (condition or {}).items():
        for key, values in keys.items():
            if op != DYNAMO_CONDITION or key not in DYNAMO_KEYS:
                problems.append(f"{where}: condition {op} {key} is not one this check reads")
                continue
            found[DYNAMO_KEYS[key]] = frozenset(_as_list(values))
    return found


def _add_statement(grants, st, where, problems):
    if st.get("Effect") == "Deny" and "NotResource" in st and not st.get("Condition"):
        # A fence: what a managed policy allows everywhere, kept to these resources.
        resources = frozenset(_resources(st["NotResource"], where, problems))
        for action in _as_list(st["Action"]):
            grants.only[action] = resources
        return
    if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
        problems.append(f"{where}: only Allow statements with Action and Resource (and Deny with NotResource) are read")
        return
    resources = _resources(st.get("Resource", []), where, problems)
    for action in _as_list(st["Action"]):
        if action.startswith("dynamodb:"):
            cond = _dynamo_condition(st.get("Condition"), where, problems)
            for res in resources:
                slot = (res, action.split(":", 1)[1])
                if slot in grants.dynamo:
                    problems.append(f"{where}: dynamodb:{slot[1]} on {slot[0]} granted by more than one statement")
                grants.dynamo[slot] = cond
        else:
            if st.get("Condition"):
                problems.append(f"{where}: {action} has a condition this check does not read")
            for res in resources:
                grants.calls.add((action, res))


def _policies(policies):
    """Each policy document, from both branches of a conditional policy."""
    for p in policies:
        if isinstance(p, dict) and "Fn::If" in p:
            yield from _policies([b for b in p["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}])
        else:
            yield p


def role_grants(translated, function, problems):
    """The grants of `function`'s role in the translated template."""
    resources = translated["Resources"]
    role_ref = resources[function]["Properties"].get("Role")
    grants = Grants()
    if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
        problems.append(f"{function}: its role is not one the template creates ({role_ref})")
        return grants
    role = resources[role_ref["Fn::GetAtt"][0]]["Properties"]
    for arn in role.get("ManagedPolicyArns", []):
        own = resources.get(arn["Ref"]) if isinstance(arn, dict) and "Ref" in arn else None
        if own and own["Type"] == "AWS::IAM::ManagedPolicy":
            # One of the template's own, shared by several functions: read like an inline one.
            for st in _as_list(own["Properties"]["PolicyDocument"]["Statement"]):
                _add_statement(grants, st, f"{function} {arn['Ref']} {st.get('Sid', '')}".rstrip(), problems)
            continue
        if not isinstance(arn, str) or not MANAGED.match(arn):
            problems.append(f"{function}: managed policy {json.dumps(arn)} is not an AWS one this check reads")
            continue
        grants.managed.add(MANAGED.sub("", arn))
    for policy in _policies(role.get("Policies", [])):
        name = policy.get("PolicyName", "?")
        for st in _as_list(policy["PolicyDocument"]["Statement"]):
            _add_statement(grants, st, f"{function} {name} {st.get('Sid', '')}".rstrip(), problems)
    if role.get("PermissionsBoundary"):
        problems.append(f"{function}: its role has a permissions boundary this check does not read")
    return grants


def _dynamo_resource(section):
    return TABLE if section == "table" else f"{TABLE}/{section}"


def _merge_list(grants, doc, where, problems):
    for section, actions in doc.get("dynamodb", {}).items():
        res = _dynamo_resource(section)
        for action, spec in actions.items():
            if isinstance(spec, list):
                spec = {"keys": spec}
            unknown = set(spec) - {"keys", "attributes"}
            if unknown or not spec.get("keys"):
                problems.append(f"{where}: dynamodb.{section}.{action} needs keys (and optional attributes), has {sorted(spec)}")
                continue
            slot = grants.dynamo.setdefault((res, action), {"keys": frozenset(), "attributes": None})
            slot["keys"] = slot["keys"] | frozenset(spec["keys"])
            if "attributes" in spec:
                slot["attributes"] = (slot["attributes"] or frozenset()) | frozenset(spec["attributes"])
    for table in ("calls",):
        for action, resources in doc.get(table, {}).items():
            grants.calls |= {(action, r) for r in resources}
    platform = doc.get("platform", {})
    grants.managed |= set(platform.get("managed", []))
    for action, resources in platform.get("only", {}).items():
        grants.only[action] = frozenset(resources)
    for action, resources in platform.items():
        if action not in ("managed", "only"):
            grants.calls |= {(action, r) for r in resources}


def list_grants(path, problems):
    """The grants a permissions.toml (and what it includes) lists."""
    grants = Grants()
    seen = set()

    def load(p):
        p = os.path.normpath(p)
        if p in seen:
            return
        seen.add(p)
        try:
            with open(p, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            problems.append(f"{p}: {e}")
            return
        unknown = set(doc) - {"include", "dynamodb", "calls", "platform"}
        if unknown:
            problems.append(f"{p}: unknown sections {sorted(unknown)}")
        for inc in doc.get("include", []):
            load(os.path.join(os.path.dirname(p), inc))
        _merge_list(grants, doc, p, problems)

    load(path)
    return grants


def _fmt(names, what="key"):
    return f"any {what}" if names is None else sorted(names)


def compare(function, listed, granted, where):
    """Problems: each grant of the role beyond the list (extra) or of the list missing."""
    out = []
    for slot in sorted(set(granted.dynamo) | set(listed.dynamo)):
        res, action = slot
        g, l = granted.dynamo.get(slot), listed.dynamo.get(slot)
        name = f"dynamodb:{action} on {res}"
        if l is None:
            out.append(f"{function}: extra {name} ({_fmt(g['keys'])}), not in {where}")
            continue
        if g is None:
            out.append(f"{function}: lacks {name} for {_fmt(l['keys'])} listed in {where}")
            continue
        if g["keys"] is None:
            out.append(f"{function}: {name} is not limited by dynamodb:LeadingKeys (list: {_fmt(l['keys'])})")
        elif g["keys"] != l["keys"]:
            if g["keys"] - l["keys"]:
                out.append(f"{function}: extra keys {sorted(g['keys'] - l['keys'])} for {name}, not in {where}")
            if l["keys"] - g["keys"]:
                out.append(f"{function}: lacks keys {sorted(l['keys'] - g['keys'])} for {name} listed in {where}")
        if g["attributes"] != l["attributes"]:
            out.append(f"{function}: {name} attributes {_fmt(g['attributes'], 'attribute')}, {where} says {_fmt(l['attributes'], 'attribute')}")
    for action, res in sorted(granted.calls - listed.calls):
        out.append(f"{function}: extra {action} on {res}, not in {where}")
    for action, res in sorted(listed.calls - granted.calls):
        out.append(f"{function}: lacks {action} on {res} listed in {where}")
    for m in sorted(granted.managed - listed.managed):
        out.append(f"{function}: extra managed policy {m}, not in {where}")
    for m in sorted(listed.managed - granted.managed):
        out.append(f"{function}: lacks managed policy {m} listed in {where}")
    for action in sorted(set(granted.only) | set(listed.only)):
        g, l = granted.only.get(action), listed.only.get(action)
        if g != l:
            out.append(f"{function}: {action} kept to {_fmt(g, 'resource')}, {where} says {_fmt(l, 'resource')}")
    return out


def check(source, translated, root="."):
    """Every function of `source` (the SAM template: CodeUri) against its list, in `translated`."""
    problems = []
    for logical, res in source["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        code = res["Properties"]["CodeUri"]
        where = os.path.join(code, "permissions.toml")
        path = os.path.join(root, where)
        if not os.path.exists(path):
            problems.append(f"{logical}: no {where} listing what its code calls")
            continue
        listed = list_grants(path, problems)
        granted = role_grants(translated, logical, problems)
        problems += compare(logical, listed, granted, where)
    return problems
