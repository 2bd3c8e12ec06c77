"""Tests of scripts/table_schema.py (run by scripts/check-template with the SAM venv):

    .venv-sam/bin/python scripts/test_table_schema.py SCHEMA_JSON

SCHEMA_JSON is `billing create-table --print`. The real template agrees with it; a copy with
one difference (a key, an attribute type, an index, a projected attribute missing or extra, the
stream, the time to live) fails naming it, and the legacy index under `Fn::If` is ignored.
"""

import copy
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from cfnlint.decode import decode  # noqa: E402

import table_schema  # noqa: E402

SOURCE, _ = decode(os.path.join(ROOT, "template.yaml"))
TABLE = json.loads(json.dumps(SOURCE["Resources"]["Table"]["Properties"], default=str))
SCHEMA = None


class TableAgainstCode(unittest.TestCase):
    def changed(self, edit):
        props = copy.deepcopy(TABLE)
        edit(props)
        return table_schema.check(props, SCHEMA)

    def test_the_template_agrees_with_the_code(self):
        self.assertEqual(table_schema.check(TABLE, SCHEMA), [])

    def test_a_different_key_is_named(self):
        def edit(p):
            p["KeySchema"][1]["AttributeName"] = "GSI1SK"
        self.assertTrue(any("KeySchema" in d for d in self.changed(edit)))

    def test_a_number_attribute_is_named(self):
        def edit(p):
            p["AttributeDefinitions"][0]["AttributeType"] = "N"
        self.assertTrue(any("AttributeDefinitions" in d for d in self.changed(edit)))

    def test_a_projected_attribute_missing_or_extra_is_named(self):
        def drop(p):
            p["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"].remove("doc")
        self.assertTrue(any("too little: ['doc']" in d for d in self.changed(drop)))

        def add(p):
            p["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"].append("raw")
        self.assertTrue(any("never reads: ['raw']" in d for d in self.changed(add)))

    def test_an_index_only_one_side_has_is_named(self):
        def rename(p):
            p["GlobalSecondaryIndexes"][0]["IndexName"] = "Other"
        found = self.changed(rename)
        self.assertTrue(any("Other: only in the template" in d for d in found), found)
        self.assertTrue(any("Listings: only in the code" in d for d in found), found)

    def test_stream_and_time_to_live_are_compared(self):
        def stream(p):
            p["StreamSpecification"]["StreamViewType"] = "KEYS_ONLY"
        self.assertTrue(any("StreamViewType" in d for d in self.changed(stream)))

        def ttl(p):
            p["TimeToLiveSpecification"]["AttributeName"] = "ttl"
        self.assertTrue(any("TimeToLive" in d for d in self.changed(ttl)))

    def test_the_legacy_index_under_a_condition_is_the_templates_alone(self):
        conditional = [i for i in TABLE["GlobalSecondaryIndexes"] if "Fn::If" in i]
        self.assertEqual(len(conditional), 1, "template.yaml keeps the legacy index under Fn::If")


if __name__ == "__main__":
    with open(sys.argv.pop(1)) as f:
        SCHEMA = json.load(f)
    unittest.main()
