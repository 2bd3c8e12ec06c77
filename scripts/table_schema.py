"""template.yaml's Table against the definition the code creates (`billing create-table --print`).

`check(properties, schema)` returns one line per difference, empty when they agree on everything
the code depends on: billing mode, attribute definitions, key schema, the global secondary
indexes (name, keys, projection), the stream's view type and the time to live. An index inside
an `Fn::If` (the legacy index a stack update may keep) and the settings only AWS has
(point-in-time recovery, encryption, deletion protection) are the template's alone.
"""


def _plain_indexes(properties):
    return [i for i in properties.get("GlobalSecondaryIndexes", []) if isinstance(i, dict) and "Fn::If" not in i]


def _projection(index):
    p = index.get("Projection", {})
    return p.get("ProjectionType"), sorted(p.get("NonKeyAttributes", []))


def check(properties, schema):
    out = []
    for name in ("BillingMode", "KeySchema"):
        if properties.get(name) != schema[name]:
            out.append(f"Table {name}: template {properties.get(name)!r}, code {schema[name]!r}")
    defined = sorted((a["AttributeName"], a["AttributeType"]) for a in properties.get("AttributeDefinitions", []))
    wanted = sorted((a["AttributeName"], a["AttributeType"]) for a in schema["AttributeDefinitions"])
    if defined != wanted:
        out.append(f"Table AttributeDefinitions: template {defined}, code {wanted}")
    template_indexes = {i.get("IndexName"): i for i in _plain_indexes(properties)}
    code_indexes = {i["IndexName"]: i for i in schema["GlobalSecondaryIndexes"]}
    for name in sorted(set(template_indexes) | set(code_indexes)):
        t, c = template_indexes.get(name), code_indexes.get(name)
        if t is None or c is None:
            out.append(f"Table index {name}: only in the {'code' if t is None else 'template'}")
            continue
        if t.get("KeySchema") != c["KeySchema"]:
            out.append(f"Table index {name} KeySchema: template {t.get('KeySchema')!r}, code {c['KeySchema']!r}")
        (t_type, t_attrs), (c_type, c_attrs) = _projection(t), _projection(c)
        if t_type != c_type:
            out.append(f"Table index {name} ProjectionType: template {t_type}, code {c_type}")
        missing, extra = sorted(set(c_attrs) - set(t_attrs)), sorted(set(t_attrs) - set(c_attrs))
        if missing:
            out.append(f"Table index {name} projects too little: {missing} missing")
        if extra:
            out.append(f"Table index {name} projects what the code never reads: {extra}")
    view = properties.get("StreamSpecification", {}).get("StreamViewType")
    if view != schema["StreamSpecification"]["StreamViewType"]:
        out.append(f"Table StreamViewType: template {view}, code {schema['StreamSpecification']['StreamViewType']}")
    if properties.get("TimeToLiveSpecification") != schema["TimeToLiveSpecification"]:
        out.append(
            f"Table TimeToLiveSpecification: template {properties.get('TimeToLiveSpecification')!r}, "
            f"code {schema['TimeToLiveSpecification']!r}"
        )
    return out
