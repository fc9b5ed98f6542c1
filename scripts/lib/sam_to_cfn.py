#!/usr/bin/env python3
"""The SAM template as plain CloudFormation, offline, for checkov (which cannot see the IAM
policies SAM generates): scripts/test scans the result twice, once as deployed by default and
once with every optional resource switched on.

Usage: python3 scripts/lib/sam_to_cfn.py template.yaml OUT.json [OUT-all-conditions.json]

samtranslator needs a region for the pseudo parameters (AWS_DEFAULT_REGION) and nothing else: no
credentials, no network. The managed policies SAM attaches itself are written as ARNs; a bare
managed-policy name in `Policies` would need the map below (the template uses none).
"""
import copy
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyLookups:
    """Stands in for samtranslator's loader, which would page through iam:ListPolicies."""

    def load(self):
        return {}


def with_local_code(template):
    """Translation needs a code location, not the code: point every function at a placeholder."""
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://offline/placeholder.zip"
    return template


def every_condition_on(translated):
    """A copy whose optional resources exist: the example role and a named role to pass."""
    template = copy.deepcopy(translated)
    parameters = template["Parameters"]
    parameters["CreateExampleAutomationRole"]["Default"] = "true"
    parameters["AutomationRoleArns"]["Default"] = "arn:aws:iam::123456789012:role/ScanOnly"
    parameters["AlarmTopicArn"]["Default"] = "arn:aws:sns:us-east-1:123456789012:scan-only"
    return template


def main(source, out, out_all=None):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(source, encoding="utf-8") as f:
        template = with_local_code(yaml_parse(f.read()))
    translated = transform(template, {}, NoManagedPolicyLookups())
    with open(out, "w", encoding="utf-8") as f:
        json.dump(translated, f, indent=1)
    if out_all:
        with open(out_all, "w", encoding="utf-8") as f:
            json.dump(every_condition_on(translated), f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
