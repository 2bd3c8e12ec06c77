"""Tests of scripts/template_variant.py (run by scripts/check-template with the SAM venv):

    .venv-sam/bin/python scripts/test_template_variant.py

On a small template and on template.yaml: off removes the part's resources and outputs and takes
each `!If`'s second branch (dropping `AWS::NoValue`); on keeps them without their `Condition`
and takes the first; the condition itself is gone either way, and nothing else changes.
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

import template_variant  # noqa: E402

SMALL = {
    "Parameters": {"Part": {"Type": "String", "Default": ""}, "Other": {"Type": "String", "Default": ""}},
    "Conditions": {
        "PartOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Part"}, ""]}]},
        "OtherOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Other"}, ""]}]},
    },
    "Resources": {
        "Always": {"Type": "AWS::SQS::Queue", "Properties": {
            "Tags": [{"Fn::If": ["PartOn", {"Key": "part", "Value": "on"}, {"Ref": "AWS::NoValue"}]}],
            "DelaySeconds": {"Fn::If": ["PartOn", 5, 0]},
            "KeepMe": {"Fn::If": ["OtherOn", 1, 2]},
        }},
        "PartQueue": {"Type": "AWS::SQS::Queue", "Condition": "PartOn"},
        "OtherQueue": {"Type": "AWS::SQS::Queue", "Condition": "OtherOn"},
    },
    "Outputs": {"PartUrl": {"Condition": "PartOn", "Value": {"Ref": "PartQueue"}}},
}


class Variant(unittest.TestCase):
    def made(self, value, template=SMALL):
        result, conditions, touched, _ = template_variant.variant(copy.deepcopy(template), "Part", value)
        return result, conditions, touched

    def test_off_removes_the_part_and_takes_the_second_branches(self):
        t, conditions, touched = self.made("")
        self.assertEqual(conditions, ["PartOn"])
        self.assertEqual(sorted(touched), ["PartQueue", "PartUrl"])
        self.assertNotIn("PartQueue", t["Resources"])
        self.assertNotIn("PartUrl", t["Outputs"])
        props = t["Resources"]["Always"]["Properties"]
        self.assertEqual(props["Tags"], [])
        self.assertEqual(props["DelaySeconds"], 0)
        self.assertEqual(props["KeepMe"], {"Fn::If": ["OtherOn", 1, 2]})
        self.assertEqual(list(t["Conditions"]), ["OtherOn"])
        self.assertEqual(t["Resources"]["OtherQueue"]["Condition"], "OtherOn")

    def test_on_keeps_the_part_unconditionally_and_takes_the_first_branches(self):
        t, _, _ = self.made("aws.partner/stripe.com/ed_x")
        self.assertEqual(t["Parameters"]["Part"]["Default"], "aws.partner/stripe.com/ed_x")
        self.assertEqual(t["Resources"]["PartQueue"], {"Type": "AWS::SQS::Queue"})
        self.assertNotIn("Condition", t["Outputs"]["PartUrl"])
        props = t["Resources"]["Always"]["Properties"]
        self.assertEqual(props["Tags"], [{"Key": "part", "Value": "on"}])
        self.assertEqual(props["DelaySeconds"], 5)
        self.assertNotIn("PartOn", t["Conditions"])

    def test_a_parameter_no_condition_reads_is_refused(self):
        with self.assertRaises(SystemExit):
            template_variant.variant(copy.deepcopy(SMALL), "Nothing", "")

    def test_the_eventbridge_part_of_the_real_template(self):
        decoded, matches = decode(os.path.join(ROOT, "template.yaml"))
        self.assertEqual(matches, [])
        real = json.loads(json.dumps(decoded, default=str))
        off, _, _, _ = template_variant.variant(copy.deepcopy(real), "StripeEventBridgeSource", "")
        on, _, _, _ = template_variant.variant(
            copy.deepcopy(real), "StripeEventBridgeSource", "aws.partner/stripe.com/ed_test_x")
        self.assertNotIn("EventBridgeFunction", off["Resources"])
        self.assertIn("EventBridgeFunction", on["Resources"])
        self.assertNotIn("EventBridgeOn", json.dumps(off) + json.dumps(on))
        # Nothing outside the part changes.
        self.assertEqual(off["Resources"]["Table"], real["Resources"]["Table"])
        self.assertEqual(set(on["Resources"]) - set(off["Resources"]),
                         {k for k, r in real["Resources"].items() if r.get("Condition") == "EventBridgeOn"})

    def test_the_connect_part_of_the_real_template_a_switch_with_named_values(self):
        decoded, matches = decode(os.path.join(ROOT, "template.yaml"))
        self.assertEqual(matches, [])
        real = json.loads(json.dumps(decoded, default=str))
        # Off is the parameter's default (Disabled), not an empty value it does not allow.
        off, conditions, _, is_on = template_variant.variant(copy.deepcopy(real), "StripeConnect", "")
        self.assertEqual((conditions, is_on), (["HasStripeConnect"], False))
        self.assertEqual(off["Parameters"]["StripeConnect"]["Default"], "Disabled")
        on, _, _, is_on = template_variant.variant(copy.deepcopy(real), "StripeConnect", "Enabled")
        self.assertTrue(is_on)
        self.assertNotIn("CheckoutConnectWebhookSecret", off["Resources"])
        self.assertIn("CheckoutConnectWebhookSecret", on["Resources"])
        env = lambda t: t["Resources"]["CheckoutFunction"]["Properties"]["Environment"]["Variables"]
        self.assertNotIn("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT_ARN", env(off))
        self.assertEqual(env(on)["STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT_ARN"],
                         {"Ref": "CheckoutConnectWebhookSecret"})


if __name__ == "__main__":
    unittest.main()
