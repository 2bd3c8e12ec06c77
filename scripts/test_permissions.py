"""Tests of scripts/permissions.py (run by scripts/check-template with the SAM venv):

    .venv-sam/bin/python scripts/test_permissions.py

The real template passes; a copy with one grant beyond a function's list (an action, a
resource, a partition key, a condition dropped, a secret, a queue, a managed policy, a fence on
one dropped or widened) fails naming it, and so does a list entry the role lacks.
"""

import copy
import json
import logging
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from cfnlint.decode import decode  # noqa: E402

import check_template  # noqa: E402
import permissions  # noqa: E402

# The translator's metrics helper warns on every translation; nothing is published anyway.
logging.disable(logging.WARNING)

SOURCE, _ = decode(os.path.join(ROOT, "template.yaml"))
SOURCE = json.loads(json.dumps(SOURCE, default=str))


def problems(mutate=None, root=ROOT):
    source = copy.deepcopy(SOURCE)
    if mutate:
        mutate(source["Resources"])
    with tempfile.TemporaryDirectory() as work:
        translated = check_template.translate(copy.deepcopy(source), os.path.join(work, "t.json"))
    return permissions.check(source, translated, root)


def statement(resources, function, sid):
    for policy in resources[function]["Properties"]["Policies"]:
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if st.get("Sid") == sid:
                return st
    raise KeyError(f"{function} {sid}")


class Permissions(unittest.TestCase):
    def fails_with(self, mutate, *expected):
        found = problems(mutate)
        for text in expected:
            self.assertTrue(any(text in p for p in found), f"{text!r} not in {found}")

    def test_the_template_grants_exactly_the_lists(self):
        self.assertEqual(problems(), [])

    def test_an_extra_action_fails(self):
        def mutate(r):
            statement(r, "ApiFunction", "GetItem")["Action"] = ["dynamodb:GetItem", "dynamodb:DeleteItem"]
        self.fails_with(mutate, "ApiFunction: extra dynamodb:DeleteItem on Table")

    def test_an_extra_resource_fails(self):
        def mutate(r):
            st = statement(r, "RelayFunction", "DeleteSent")
            st["Resource"] = [st["Resource"], {"Fn::Sub": "${Table.Arn}/index/*"}]
        self.fails_with(mutate, "RelayFunction: extra dynamodb:DeleteItem on Table/index/*")

    def test_an_extra_partition_key_fails(self):
        def mutate(r):
            statement(r, "PaypalFunction", "PutItem")["Condition"]["ForAllValues:StringLike"][
                "dynamodb:LeadingKeys"].append("AUDIT#*x")
        self.fails_with(mutate, "PaypalFunction: extra keys ['AUDIT#*x'] for dynamodb:PutItem on Table")

    def test_a_dropped_key_condition_fails(self):
        def mutate(r):
            del statement(r, "EmailsFunction", "EmailRecords")["Condition"]
        self.fails_with(mutate, "EmailsFunction: dynamodb:UpdateItem on Table is not limited by dynamodb:LeadingKeys")

    def test_a_dropped_attribute_condition_fails(self):
        def mutate(r):
            del statement(r, "RelayFunction", "SetAsideUnreadable")["Condition"]["ForAllValues:StringLike"][
                "dynamodb:Attributes"]
        self.fails_with(mutate, "RelayFunction: dynamodb:UpdateItem on Table attributes any attribute")

    def test_an_extra_grant_in_the_shared_policy_fails_for_every_stripe_function(self):
        def mutate(r):
            doc = r["StripeWebhookTableAccess"]["Properties"]["PolicyDocument"]
            doc["Statement"].append({"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}})
        self.fails_with(mutate, *[f"{f}Function: extra dynamodb:UpdateItem on Table" for f in ["Checkout", "Subscription", "Invoice", "Charge"]])

    def test_paypal_reading_the_stripe_key_fails(self):
        def mutate(r):
            r["PaypalFunction"]["Properties"]["Policies"].append({"Statement": [{
                "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "StripeApiKeySecretArn"}}]})
        self.fails_with(mutate, "PaypalFunction: extra secretsmanager:GetSecretValue on StripeApiKeySecretArn")

    def test_an_extra_queue_fails(self):
        def mutate(r):
            statement(r, "RelayFunction", "Feed")["Resource"].append({"Fn::GetAtt": ["FeedDeadLetterQueue", "Arn"]})
        self.fails_with(mutate, "RelayFunction: extra sqs:SendMessage on FeedDeadLetterQueue")

    def test_an_extra_managed_policy_fails(self):
        def mutate(r):
            r["ApiFunction"]["Properties"]["Policies"].append("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess")
        self.fails_with(mutate, "ApiFunction: extra managed policy AmazonDynamoDBFullAccess")

    def test_a_dropped_fence_on_a_managed_policy_fails(self):
        def mutate(r):
            policy = r["EmailsFunction"]["Properties"]["Policies"][0]
            policy["Statement"] = [st for st in policy["Statement"] if st.get("Sid") != "OnlyItsQueues"]
        self.fails_with(mutate, "EmailsFunction: sqs:ReceiveMessage kept to any resource")

    def test_a_wider_fence_fails(self):
        def mutate(r):
            statement(r, "EmailsFunction", "OnlyItsQueues")["NotResource"].append({"Fn::GetAtt": ["FeedQueue", "Arn"]})
        self.fails_with(mutate, "EmailsFunction: sqs:DeleteMessage kept to ['EmailBounceQueue', 'EmailQueue', 'FeedQueue']")

    def test_a_call_of_the_list_the_role_lacks_fails(self):
        def mutate(r):
            keys = statement(r, "ApiFunction", "GetItem")["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            keys.remove("WARMUP")
        self.fails_with(mutate, "ApiFunction: lacks keys ['WARMUP'] for dynamodb:GetItem on Table")

    def test_a_condition_the_check_cannot_read_fails(self):
        def mutate(r):
            statement(r, "ApiFunction", "GetItem")["Condition"]["StringEquals"] = {"dynamodb:Select": "ALL_ATTRIBUTES"}
        self.fails_with(mutate, "condition StringEquals dynamodb:Select is not one this check reads")

    def test_a_function_without_a_list_fails(self):
        with tempfile.TemporaryDirectory() as empty:
            found = problems(root=empty)
        self.assertIn("ApiFunction: no functions/api/permissions.toml listing what its code calls", found)


if __name__ == "__main__":
    unittest.main()
