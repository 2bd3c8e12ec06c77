"""One optional part of template.yaml made concrete, off or on (run by scripts/check-template).

    python scripts/template_variant.py TEMPLATE PARAMETER=VALUE OUT

An optional part is switched by a parameter whose conditions read `!Not [!Equals [!Ref
PARAMETER, ""]]` (on while the parameter is set). cfn-lint checks a template's condition
scenarios, but not what a stack with the part off or on really holds; this writes that
template to OUT (JSON), the parameter's default set to VALUE:
- on (VALUE not empty): the part's resources and outputs lose their `Condition`, and every
  `!If [ITS_CONDITION, a, b]` becomes `a`;
- off (VALUE empty): its resources and outputs are removed, and every such `!If` becomes `b`
  (`AWS::NoValue` removing the property or list item it stood for);
and the condition itself is removed. A reference left to a removed resource is then an error
cfn-lint reports on OUT. Prints the part's condition and what it kept or removed.
"""

import json
import sys

from cfnlint.decode import decode

NO_VALUE = {"Ref": "AWS::NoValue"}
DROP = object()


def switch_conditions(template, parameter, value):
    """The conditions `parameter` alone decides, and whether they hold at `value`: on while it
    is set (`!Not [!Equals [!Ref P, ""]]`), or while it is one value (`!Equals [!Ref P, X]`)."""
    set_ = {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    found = {}
    for name, cond in template.get("Conditions", {}).items():
        if cond == set_:
            found[name] = value != ""
        elif list(cond) == ["Fn::Equals"] and cond["Fn::Equals"][0] == {"Ref": parameter}:
            found[name] = value == cond["Fn::Equals"][1]
    if len(set(found.values())) > 1:
        raise SystemExit(f"template_variant: `{parameter}`'s conditions disagree at `{value}`")
    return set(found), any(found.values())


def resolve(node, conditions, on):
    """`node` with every `Fn::If` on one of `conditions` replaced by its branch."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in conditions:
            branch = node["Fn::If"][1 if on else 2]
            branch = resolve(branch, conditions, on)
            return DROP if branch == NO_VALUE else branch
        out = {}
        for k, v in node.items():
            v = resolve(v, conditions, on)
            if v is not DROP:
                out[k] = v
        return out
    if isinstance(node, list):
        return [v for v in (resolve(x, conditions, on) for x in node) if v is not DROP]
    return node


def variant(template, parameter, value):
    declared = template.get("Parameters", {}).get(parameter, {})
    if value == "" and "" not in declared.get("AllowedValues", [""]):
        # A switch with named values (Enabled/Disabled): off is its default.
        value = declared["Default"]
    conditions, on = switch_conditions(template, parameter, value)
    if not conditions:
        raise SystemExit(f"template_variant: no condition is `{parameter}` set")
    template["Parameters"][parameter]["Default"] = value
    touched = []
    for section in ("Resources", "Outputs"):
        for logical in list(template.get(section, {})):
            if template[section][logical].get("Condition") in conditions:
                touched.append(logical)
                if on:
                    del template[section][logical]["Condition"]
                else:
                    del template[section][logical]
    for name in conditions:
        del template["Conditions"][name]
    return resolve(template, conditions, on), sorted(conditions), touched, on


def main():
    path, assignment, out = sys.argv[1:4]
    parameter, _, value = assignment.partition("=")
    decoded, matches = decode(path)
    if matches:
        raise SystemExit(f"template_variant: cannot read {path}: {matches}")
    template = json.loads(json.dumps(decoded, default=str))
    result, conditions, touched, on = variant(template, parameter, value)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    state = "on" if on else "off"
    verb = "kept" if on else "removed"
    print(f"template_variant: {parameter} {state} ({', '.join(conditions)}): {verb} {len(touched)} "
          f"resources and outputs ({', '.join(touched)})")


if __name__ == "__main__":
    main()
