#!/usr/bin/env python3
"""Prints what each function's role allows, as IAM would see it once deployed.

Usage: iam_policies.py TEMPLATE [NAME=VALUE ...]  (the deploy venv's python: make setup-deploy)

The template is translated as `sam deploy` translates it (aws-sam-translator,
the library SAM CLI uses), then every intrinsic is resolved for one stack in
a fixed account and region, with parameters at their defaults unless given
as NAME=VALUE. What comes
out, as one JSON object on stdout:

- "account", "region";
- "resources": each resource's Ref and its ARN where it has one;
- "functions": for each function, by the binary it runs: its role's inline
  policies and the AWS managed policies it is given (with their published
  documents), its environment, and the queues of its SQS events;
- "bucket_policy": the documents bucket's own policy.

The IAM test (tests/integration/iam.rs) evaluates each function's calls
against these with an IAM policy engine (tests/iam).
"""

import copy
import json
import os
import re
import sys
import zlib

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ACCOUNT = "123456789012"
REGION = os.environ["AWS_DEFAULT_REGION"]
STACK = "lambda-ocr"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/6f1d2c3b-0a9e-11f0-9c5d-0e4f5a6b7c8d"

# The AWS managed policies SAM attaches, as AWS publishes them.
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
}


class NoManagedPolicies:
    """The template names no managed policy by its short name."""

    def load(self):
        return {}


class Stack:
    def __init__(self, template, given):
        self.template = template
        self.resources = template["Resources"]
        self.parameters = {
            name: spec.get("Default", "")
            for name, spec in template.get("Parameters", {}).items()
        }
        for name, value in given.items():
            if name not in self.parameters:
                sys.exit(f"the template has no parameter {name}")
            self.parameters[name] = value
        self.names = {}

    # ---------------------------------------------------------------- names
    def physical_name(self, logical):
        """The name CloudFormation gives a resource: its own, or stack-logical-suffix."""
        if logical in self.names:
            return self.names[logical]
        resource = self.resources[logical]
        props = resource.get("Properties", {})
        own = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Logs::LogGroup": "LogGroupName",
        }.get(resource["Type"])
        name = self.resolve(props[own]) if own and own in props else None
        if name is None:
            name = f"{STACK}-{logical}-{zlib.crc32(logical.encode()):010d}"
            if resource["Type"] in ("AWS::S3::Bucket",):
                name = name.lower()
        self.names[logical] = name
        return name

    def arn(self, logical):
        kind = self.resources[logical]["Type"]
        name = self.physical_name(logical)
        return {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::Cognito::UserPool": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{name}",
        }.get(kind, f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:{logical}")

    def ref(self, name):
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            "AWS::StackId": STACK_ID,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.resolve(self.parameters[name])
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.physical_name(name)}"
        if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret"):
            return self.arn(name)
        return self.physical_name(name)

    def get_att(self, logical, attribute):
        if attribute == "Arn":
            return self.arn(logical)
        if attribute == "QueueName":
            return self.physical_name(logical)
        if attribute == "QueueUrl":
            return self.ref(logical)
        return f"{logical}.{attribute}"

    # ----------------------------------------------------------- conditions
    def condition(self, name):
        return bool(self.resolve(self.template["Conditions"][name]))

    # ----------------------------------------------------------- intrinsics
    def resolve(self, value):
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not None]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not None}
        (key, arg), = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(logical, attribute)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            variables = {k: self.resolve(v) for k, v in variables.items()}

            def one(match):
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name and not name.startswith("AWS::"):
                    return str(self.get_att(*name.split(".", 1)))
                return str(self.ref(name))

            return re.sub(r"\$\{([^}!]+)\}", one, text)
        if key == "Fn::Join":
            return arg[0].join(str(v) for v in self.resolve(arg[1]))
        if key == "Fn::Split":
            return str(self.resolve(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self.resolve(arg[1])[int(self.resolve(arg[0]))]
        if key == "Fn::If":
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if key == "Fn::Equals":
            return self.resolve(arg[0]) == self.resolve(arg[1])
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        return {key: self.resolve(arg)}


def functions(sam, cfn, stack):
    out = {}
    for logical, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        function = cfn["Resources"][logical]
        role_logical = function["Properties"]["Role"]["Fn::GetAtt"][0]
        role = cfn["Resources"][role_logical]["Properties"]
        policies = [stack.resolve(p["PolicyDocument"]) for p in role.get("Policies", [])]
        for managed in stack.resolve(role.get("ManagedPolicyArns", [])):
            if managed not in MANAGED:
                sys.exit(f"{logical}: the managed policy {managed} is not known here; add its document")
            policies.append({"Version": "2012-10-17", "Statement": MANAGED[managed]})
        environment = stack.resolve(function["Properties"].get("Environment", {}).get("Variables", {}))
        queues = [
            stack.resolve(mapping["Properties"]["EventSourceArn"])
            for mapping in cfn["Resources"].values()
            if mapping["Type"] == "AWS::Lambda::EventSourceMapping"
            and mapping["Properties"]["FunctionName"] == {"Ref": logical}
        ]
        out[binary] = {
            "logical_id": logical,
            "role": stack.arn(role_logical),
            "policies": policies,
            "environment": environment,
            "event_queues": queues,
        }
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    given = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with open(sys.argv[1], encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    packaged = copy.deepcopy(sam)
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # As `sam package` leaves it: the code in S3.
            resource["Properties"]["CodeUri"] = "s3://lambda-ocr-artifacts/code.zip"
    cfn = transform(packaged, {}, NoManagedPolicies())
    stack = Stack(cfn, given)
    bucket_policies = [
        r["Properties"]["PolicyDocument"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "DocumentsBucket"}
    ]
    print(
        json.dumps(
            {
                "account": ACCOUNT,
                "region": REGION,
                "resources": {
                    logical: {"ref": stack.ref(logical), "arn": stack.arn(logical)}
                    for logical in cfn["Resources"]
                },
                "functions": functions(sam, cfn, stack),
                "bucket_policy": stack.resolve(bucket_policies[0]) if bucket_policies else None,
                "bucket_encryption": stack.resolve(
                    cfn["Resources"]["DocumentsBucket"]["Properties"].get("BucketEncryption")
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
