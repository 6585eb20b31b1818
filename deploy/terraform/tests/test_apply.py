"""`terraform apply` of the module against the local AWS emulator, read back through the AWS API.

Given an existing Auto Scaling group and a pool (one ENI tagged pinhook:pool), when a small root
configuration applies the module with the provider pointed at the emulator, then AWS holds what
template.yaml declares for the same parameters: the hooks with their metadata, the rule's pattern
and target, the role's statements one by one, the alarms; enabling instances without a group adds
the template's state-change rule and statements; pinhook, configured as the module configured the
function, pins a launch of the group; and destroy leaves nothing behind but the group and the pool.

Run with scripts/terraform-test (it installs what this needs). Skipped, with one line saying why,
when terraform is not on PATH; the replay alone is skipped when the pinhook binary is not built.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REPO = Path(__file__).resolve().parents[3]
MODULE = REPO / "deploy" / "terraform"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
GROUP = "tf-licensed-app"
POOL = "tf-licence"
METADATA = json.dumps({"pin": "eni", "pool": POOL}, separators=(",", ":"))
NAME = "pinhook-tf"  # the module's function_name: every name it creates starts with it

if shutil.which("terraform") is None:
    pytest.skip(
        "terraform is not on PATH: the module's apply test needs it (CI machines have it)",
        allow_module_level=True,
    )


# --------------------------------------------------------------------------------------------
# template.yaml, evaluated as CloudFormation would for given parameters


def load_template() -> dict[str, Any]:
    from cfnlint.decode.decode import decode_str

    template, matches = decode_str((REPO / "template.yaml").read_text())
    assert template is not None, matches
    return template


def evaluate_template(parameters: dict[str, Any]) -> dict[str, Any]:
    """The template's Resources with Ref, Sub, GetAtt, Join, Split, If and the conditions
    resolved: parameters by value, resources as placeholders (`ref:Name`, `getatt:Name.Attr`).
    Parameters not given take their Default."""
    template = load_template()
    values: dict[str, Any] = {}
    for name, declaration in template["Parameters"].items():
        value = parameters.get(name, declaration.get("Default"))
        if declaration["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",")
        values[name] = value
    values.update(
        {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    )
    conditions: dict[str, bool] = {}
    for name, condition in template.get("Conditions", {}).items():
        conditions[name] = bool(resolve(condition, values, conditions))
    resources = {}
    for name, resource in template["Resources"].items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        resources[name] = resolve(resource, values, conditions)
    return resources


NO_VALUE = object()


def resolve(node: Any, values: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(node, list):
        items = [resolve(item, values, conditions) for item in node]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, argument),) = node.items()
        if key == "Ref":
            if argument == "AWS::NoValue":
                return NO_VALUE
            return values.get(argument, f"ref:{argument}")
        if key == "Fn::If":
            name, yes, no = argument
            return resolve(yes if conditions[name] else no, values, conditions)
        if key == "Fn::GetAtt":
            target = argument if isinstance(argument, str) else ".".join(argument)
            return f"getatt:{target}"
        if key == "Fn::Sub":
            text, extra = (argument, {}) if isinstance(argument, str) else argument
            extra = {k: resolve(v, values, conditions) for k, v in extra.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in extra:
                    return str(extra[name])
                if name in values:
                    value = values[name]
                    return ",".join(value) if isinstance(value, list) else str(value)
                return f"getatt:{name}" if "." in name else f"ref:{name}"

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        if key == "Fn::Join":
            separator, items = (resolve(a, values, conditions) for a in argument)
            return separator.join(str(i) for i in items)
        if key == "Fn::Split":
            separator, text = (resolve(a, values, conditions) for a in argument)
            return text.split(separator)
        if key == "Fn::Equals":
            left, right = (resolve(a, values, conditions) for a in argument)
            return left == right
        if key == "Fn::Not":
            return not resolve(argument[0], values, conditions)
        if key.startswith("Fn::"):
            raise AssertionError(
                f"the template uses {key}, which this test does not evaluate"
            )
    resolved = {k: resolve(v, values, conditions) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def normalise_statement(
    statement: dict[str, Any], placeholders: dict[str, str]
) -> dict[str, Any]:
    """A statement as sets: actions, resources (placeholders replaced by what they became), and
    each condition operator's keys with their values."""

    def real(value: str) -> str:
        return placeholders.get(value, value)

    return {
        "Sid": statement.get("Sid"),
        "Effect": statement["Effect"],
        "Action": sorted(as_list(statement["Action"])),
        "Resource": sorted(real(r) for r in as_list(statement["Resource"])),
        "Condition": {
            operator: {
                key: sorted(str(v) for v in as_list(value))
                for key, value in keys.items()
            }
            for operator, keys in statement.get("Condition", {}).items()
        },
    }


def template_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    policies = resources["PinhookFunction"]["Properties"]["Policies"]
    return [s for policy in policies for s in as_list(policy["Statement"])]


# --------------------------------------------------------------------------------------------
# EventBridge content filtering, for the forms both paths use: lists of values, nested objects


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, wanted in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(wanted, dict):
            if not isinstance(actual, dict) or not matches(wanted, actual):
                return False
        elif isinstance(actual, list):
            if not any(a in wanted for a in actual):
                return False
        elif actual not in wanted:
            return False
    return True


def sample(name: str, group: str) -> dict[str, Any]:
    event = json.loads((REPO / "events" / name).read_text())
    event["detail"]["AutoScalingGroupName"] = group
    return event


# --------------------------------------------------------------------------------------------
# The emulator, the world that exists before Terraform, and the Terraform root


def plugin_dir() -> str | None:
    """The local directory holding the AWS provider (TF_PLUGIN_DIR, or found as
    scripts/terraform-plugin-dir finds it); None to let terraform init use the registry."""
    found = subprocess.run(
        [str(REPO / "scripts" / "terraform-plugin-dir")], capture_output=True, text=True
    )
    return found.stdout.strip() or None


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    python = REPO / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="pinhook-tf-emulator-") as scratch:
        port_file = Path(scratch) / "port"
        log = open(Path(scratch) / "emulator.log", "w")
        process = subprocess.Popen(
            [
                str(python if python.exists() else sys.executable),
                "-m",
                "pinhook_emulator",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--parent-pid",
                str(os.getpid()),
            ],
            cwd=REPO / "emulator",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                assert process.poll() is None, (
                    Path(scratch) / "emulator.log"
                ).read_text()
                assert time.monotonic() < deadline, (
                    "the emulator did not start within 30 s"
                )
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port_file.read_text().strip()}"
        finally:
            process.terminate()  # by its PID
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture(scope="module")
def aws(endpoint: str) -> Any:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    class Clients:
        def __getattr__(self, service: str) -> Any:
            client = session.client(service, endpoint_url=endpoint)
            setattr(self, service, client)
            return client

    return Clients()


@pytest.fixture(scope="module")
def world(aws: Any) -> dict[str, str]:
    """What exists before Terraform: a VPC, a subnet, a launch template, the group (no instance
    yet) and its pool of one ENI, in the subnet's AZ."""
    vpc = aws.ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.61.1.0/24", AvailabilityZone=f"{REGION}a"
    )["Subnet"]["SubnetId"]
    aws.ec2.create_launch_template(
        LaunchTemplateName="tf-licensed-app",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
    )
    aws.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateName": "tf-licensed-app"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        VPCZoneIdentifier=subnet,
    )
    eni = aws.ec2.create_network_interface(
        SubnetId=subnet,
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [{"Key": "pinhook:pool", "Value": POOL}],
            }
        ],
    )["NetworkInterface"]["NetworkInterfaceId"]
    return {"subnet": subnet, "eni": eni}


ROOT = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {{
{endpoints}
  }}
}}

variable "state_change_rule" {{
  type    = string
  default = "NONE"
}}

module "pinhook" {{
  source             = "{module}"
  function_name      = "{name}"
  group_names        = ["{group}"]
  zip_path           = "{zip}"
  state_change_rule  = var.state_change_rule
  notification_queue = true
  create_alarm_topic = true
  create_dashboard   = true
  lifecycle_hooks = {{
    licensed = {{
      group_name            = "{group}"
      notification_metadata = {metadata}
      heartbeat_timeout     = 300
    }}
  }}
}}

output "pinhook" {{
  value = module.pinhook
}}
"""

# Every service the module (and its data sources) calls.
SERVICES = (
    "lambda",
    "iam",
    "events",
    "logs",
    "cloudwatch",
    "sqs",
    "sns",
    "autoscaling",
    "sts",
    "ec2",
)


class Terraform:
    def __init__(self, directory: Path, plugins: str | None) -> None:
        self.directory = directory
        self.env = dict(
            os.environ, TF_DATA_DIR=str(directory / ".terraform"), TF_IN_AUTOMATION="1"
        )
        self.env["CHECKPOINT_DISABLE"] = "1"
        if not Path(self.env.get("TF_CLI_CONFIG_FILE", "/")).is_file():
            self.env.pop("TF_CLI_CONFIG_FILE", None)
        self.plugins = plugins

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["terraform", *args, "-no-color"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (
            f"terraform {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def init(self) -> None:
        self(
            "init",
            "-input=false",
            *([f"-plugin-dir={self.plugins}"] if self.plugins else []),
        )


@pytest.fixture(scope="module")
def terraform(endpoint: str, world: dict[str, str]) -> Iterator[Terraform]:
    with tempfile.TemporaryDirectory(prefix="pinhook-tf-root-") as scratch:
        root = Path(scratch)
        # Any small zip: moto's CreateFunction keeps the code without running it (no Docker).
        zip_path = root / "bootstrap.zip"
        with zipfile.ZipFile(zip_path, "w") as archive:
            archive.writestr(
                "bootstrap",
                "#!/bin/sh\necho 'not pinhook: the apply test only deploys it'\n",
            )
        endpoints = "\n".join(
            f'    {service:<11} = "{endpoint}"' for service in SERVICES
        )
        (root / "main.tf").write_text(
            ROOT.format(
                region=REGION,
                endpoints=endpoints,
                module=MODULE,
                name=NAME,
                group=GROUP,
                zip=zip_path,
                metadata=json.dumps(METADATA),
            )
        )
        tf = Terraform(root, plugin_dir())
        tf.init()
        tf.applied = False  # type: ignore[attr-defined]
        try:
            yield tf
        finally:
            if tf.applied:  # type: ignore[attr-defined]
                subprocess.run(
                    ["terraform", "destroy", "-auto-approve", "-no-color"],
                    cwd=root,
                    env=tf.env,
                    capture_output=True,
                )


@pytest.fixture(scope="module")
def stack(terraform: Terraform) -> dict[str, Any]:
    """The module applied; its outputs."""
    started = time.monotonic()
    terraform.applied = True  # type: ignore[attr-defined]
    output = terraform("apply", "-auto-approve", "-input=false")
    created = re.search(r"Apply complete! Resources: (\d+) added", output)
    slowest = sorted(
        (
            (int(s), r)
            for r, s in re.findall(
                r"^(\S+): Creation complete after (\d+)s", output, re.MULTILINE
            )
        ),
        reverse=True,
    )[:3]
    print(
        f"\napply: {created.group(1) if created else '?'} resources in {time.monotonic() - started:.0f} s;"
        f" slowest: {', '.join(f'{r} {s} s' for s, r in slowest)}"
    )
    outputs = json.loads(terraform("output", "-json"))["pinhook"]["value"]
    outputs["resources_added"] = int(created.group(1)) if created else None
    return outputs


# The template's parameters for what the test root gives the module.
TEMPLATE_PARAMETERS = {
    "GroupNames": [GROUP],
    "HookGroupName": GROUP,
    "HookMetadata": METADATA,
    "HookHeartbeatTimeout": 300,
    "NotificationQueue": "true",
    "CreateAlarmTopic": "true",
    "Dashboard": "true",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """template.yaml's resources for the parameters the test root gives the module."""
    return evaluate_template(TEMPLATE_PARAMETERS)


def placeholders(stack: dict[str, Any]) -> dict[str, str]:
    """What the template's placeholders became in the module's stack."""
    return {
        "getatt:DeadLetterQueue.Arn": stack["dead_letter_queue_arn"],
        "getatt:LifecycleQueue.Arn": stack["notification_queue_arn"],
        "getatt:LifecycleNotificationRole.Arn": stack["notification_role_arn"],
        "getatt:PinhookFunction.Arn": stack["function_arn"],
        "getatt:LifecycleRule.Arn": stack["rule_arn"],
        "getatt:InstanceStateRule.Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{NAME}-state-change",
        "ref:AlarmTopic": stack["alarm_topic_arn"],
        "ref:PinhookFunction": stack["function_name"],
        "getatt:DeadLetterQueue.QueueName": f"{NAME}-dead-letters",
        "getatt:LifecycleQueueDeadLetters.QueueName": f"{NAME}-lifecycle-dead-letters",
    }


# --------------------------------------------------------------------------------------------
# The tests, in the order they run: apply, read back, replay, destroy


def test_the_module_creates_the_hooks_with_their_metadata_publishing_to_its_queue(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    hooks = aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)[
        "LifecycleHooks"
    ]
    got = {
        h["LifecycleHookName"]: (
            h["LifecycleTransition"],
            h["NotificationMetadata"],
            h["HeartbeatTimeout"],
            h["DefaultResult"],
            h.get("NotificationTargetARN"),
            h.get("RoleARN"),
        )
        for h in hooks
    }
    marks = placeholders(stack)
    want = {}
    for name in ("LaunchHook", "TerminateHook"):
        p = template[name]["Properties"]
        want[p["LifecycleHookName"]] = (
            p["LifecycleTransition"],
            p["NotificationMetadata"],
            int(p["HeartbeatTimeout"]),
            p["DefaultResult"],
            marks[p["NotificationTargetARN"]],
            marks[p["RoleARN"]],
        )
    assert got == want
    assert stack["lifecycle_hooks"] == [
        f"{GROUP}/pinhook-launch",
        f"{GROUP}/pinhook-terminate",
    ]


def test_the_rule_matches_the_groups_lifecycle_actions_and_nothing_else(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    rule = aws.events.describe_rule(Name=f"{NAME}-lifecycle")
    pattern = json.loads(rule["EventPattern"])
    assert pattern == template["LifecycleRule"]["Properties"]["EventPattern"]
    assert rule["State"] == template["LifecycleRule"]["Properties"]["State"]
    for name in ("launch.json", "terminate.json"):
        assert matches(pattern, sample(name, GROUP)), (
            f"{name} of {GROUP} must reach pinhook"
        )
        assert not matches(pattern, sample(name, "another-group")), (
            f"{name} of another group"
        )
    state_change = sample("launch.json", GROUP)
    state_change["detail-type"] = "EC2 Instance State-change Notification"
    assert not matches(pattern, state_change)
    # its target: the function, with the template's retry policy and dead-letter queue
    (target,) = aws.events.list_targets_by_rule(Rule=f"{NAME}-lifecycle")["Targets"]
    (want,) = template["LifecycleRule"]["Properties"]["Targets"]
    marks = placeholders(stack)
    assert target["Arn"] == marks[want["Arn"]]
    assert target["RetryPolicy"] == want["RetryPolicy"]
    assert target["DeadLetterConfig"]["Arn"] == marks[want["DeadLetterConfig"]["Arn"]]
    # the sweep's schedule, as the template's, and no state-change rule by default
    sweep = aws.events.describe_rule(Name=f"{NAME}-sweep")
    assert (
        sweep["ScheduleExpression"]
        == template["SweepRule"]["Properties"]["ScheduleExpression"]
    )
    (sweep_target,) = aws.events.list_targets_by_rule(Rule=f"{NAME}-sweep")["Targets"]
    assert (
        sweep_target["RetryPolicy"]
        == template["SweepRule"]["Properties"]["Targets"][0]["RetryPolicy"]
    )
    rules = {r["Name"] for r in aws.events.list_rules(NamePrefix=NAME)["Rules"]}
    assert rules == {f"{NAME}-lifecycle", f"{NAME}-sweep"}
    assert "InstanceStateRule" not in template
    # the function may be invoked by both rules, and by nothing else
    policy = json.loads(
        aws.__getattr__("lambda").get_policy(FunctionName=NAME)["Policy"]
    )
    sources = sorted(
        s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]
    )
    assert sources == sorted([stack["rule_arn"], stack["sweep_rule_arn"]])


def test_the_role_has_the_templates_statements_one_by_one(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    role = stack["role_name"]
    inline = aws.iam.list_role_policies(RoleName=role)["PolicyNames"]
    got = []
    for name in inline:
        document = aws.iam.get_role_policy(RoleName=role, PolicyName=name)[
            "PolicyDocument"
        ]
        got += [normalise_statement(s, {}) for s in as_list(document["Statement"])]
    want = [
        normalise_statement(s, placeholders(stack))
        for s in template_statements(template)
    ]
    assert [s["Sid"] for s in got] == [s["Sid"] for s in want]
    for mine, theirs in zip(got, want):
        assert mine == theirs, mine["Sid"]
    # and what SAM attaches to the role it creates for a function: the basic execution policy
    attached = aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
    # the role Auto Scaling publishes with: trusted by Auto Scaling, limited to the queue
    publisher = template["LifecycleNotificationRole"]["Properties"]
    notification_role = stack["notification_role_arn"].rsplit("/", 1)[1]
    trust = aws.iam.get_role(RoleName=notification_role)["Role"][
        "AssumeRolePolicyDocument"
    ]
    assert (
        trust["Statement"][0]["Principal"]
        == publisher["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    )
    (name,) = aws.iam.list_role_policies(RoleName=notification_role)["PolicyNames"]
    document = aws.iam.get_role_policy(RoleName=notification_role, PolicyName=name)[
        "PolicyDocument"
    ]
    assert [
        normalise_statement(s, {}) | {"Sid": None}
        for s in as_list(document["Statement"])
    ] == [
        normalise_statement(s, placeholders(stack))
        for s in publisher["Policies"][0]["PolicyDocument"]["Statement"]
    ]


def alarm_shape(alarm: dict[str, Any]) -> tuple[Any, ...]:
    """What an alarm watches and when it fires, as comparable values."""
    if alarm.get("Metrics"):
        (query,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
        watched: tuple[Any, ...] = ("query", query["Expression"], int(query["Period"]))
    else:
        watched = (
            "metric",
            alarm["Namespace"],
            alarm["MetricName"],
            alarm["Statistic"],
            int(alarm["Period"]),
            tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))),
        )
    return (
        watched,
        float(alarm["Threshold"]),
        alarm["ComparisonOperator"],
        int(alarm["EvaluationPeriods"]),
        int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"]),
        alarm.get("TreatMissingData", "missing"),
        len(alarm.get("AlarmActions", [])),
    )


def test_the_alarms_are_the_templates(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    marks = placeholders(stack)
    alarms = aws.cloudwatch.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"]
    got = sorted(alarm_shape(a) for a in alarms)
    want = []
    for resource in template.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = copy.deepcopy(resource["Properties"])
        for dimension in alarm.get("Dimensions", []):
            dimension["Value"] = marks.get(dimension["Value"], dimension["Value"])
        want.append(alarm_shape(alarm))
    assert got == sorted(want)
    # every alarm notifies the topic the module created
    assert all(a["AlarmActions"] == [stack["alarm_topic_arn"]] for a in alarms)
    assert aws.sns.get_topic_attributes(TopicArn=stack["alarm_topic_arn"])["Attributes"]


def test_the_dashboard_is_the_templates(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    body = json.loads(
        aws.cloudwatch.get_dashboard(DashboardName=stack["dashboard_name"])[
            "DashboardBody"
        ]
    )
    want = json.loads(template["PinhookDashboard"]["Properties"]["DashboardBody"])
    for key, value in placeholders(stack).items():
        want = json.loads(json.dumps(want).replace(key, value))
    assert body == want


def test_the_function_and_its_queues_are_configured_as_the_templates(
    stack: dict[str, Any], aws: Any, template: dict[str, Any]
) -> None:
    lam = aws.__getattr__("lambda")
    function = lam.get_function_configuration(FunctionName=NAME)
    want = template["PinhookFunction"]["Properties"]
    assert (function["Runtime"], function["Handler"], function["Architectures"]) == (
        want["Runtime"],
        want["Handler"],
        want["Architectures"],
    )
    assert (function["Timeout"], function["MemorySize"]) == (
        want["Timeout"],
        want["MemorySize"],
    )
    assert function["Environment"]["Variables"] == want["Environment"]["Variables"]
    assert function["LoggingConfig"]["LogFormat"] == want["LoggingConfig"]["LogFormat"]
    concurrency = lam.get_function_concurrency(FunctionName=NAME)[
        "ReservedConcurrentExecutions"
    ]
    assert concurrency == want["ReservedConcurrentExecutions"]
    invoke = lam.get_function_event_invoke_config(FunctionName=NAME)
    assert (
        invoke["MaximumRetryAttempts"]
        == want["EventInvokeConfig"]["MaximumRetryAttempts"]
    )
    assert (
        invoke["DestinationConfig"]["OnFailure"]["Destination"]
        == stack["dead_letter_queue_arn"]
    )
    logs = aws.logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{NAME}")[
        "logGroups"
    ]
    assert [g["retentionInDays"] for g in logs] == [
        template["PinhookLogGroup"]["Properties"]["RetentionInDays"]
    ]
    # the queue drained with ReportBatchItemFailures, redriven after five receives, SSE-SQS
    (mapping,) = lam.list_event_source_mappings(FunctionName=stack["function_arn"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == stack["notification_queue_arn"]
    assert (
        mapping["FunctionResponseTypes"]
        == template["LifecycleQueueMapping"]["Properties"]["FunctionResponseTypes"]
    )
    assert (
        mapping["BatchSize"]
        == template["LifecycleQueueMapping"]["Properties"]["BatchSize"]
    )
    queue = aws.sqs.get_queue_attributes(
        QueueUrl=stack["notification_queue_url"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    want_queue = template["LifecycleQueue"]["Properties"]
    assert (
        int(redrive["maxReceiveCount"])
        == want_queue["RedrivePolicy"]["maxReceiveCount"]
    )
    assert redrive["deadLetterTargetArn"].endswith(f":{NAME}-lifecycle-dead-letters")
    assert int(queue["VisibilityTimeout"]) == want_queue["VisibilityTimeout"]
    assert queue["SqsManagedSseEnabled"] == "true"
    dead_letters = aws.sqs.get_queue_attributes(
        QueueUrl=stack["dead_letter_queue_url"], AttributeNames=["All"]
    )["Attributes"]
    (statement,) = json.loads(dead_letters["Policy"])["Statement"]
    (want_statement,) = template["DeadLetterQueuePolicy"]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    assert statement["Principal"] == want_statement["Principal"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == stack["rule_arn"]


def test_enabling_instances_without_a_group_adds_the_templates_rule_and_statements(
    stack: dict[str, Any], terraform: Terraform
) -> None:
    terraform(
        "plan",
        "-refresh=false",
        "-input=false",
        "-var",
        "state_change_rule=ENABLED",
        "-out=state-change.plan",
    )
    plan = json.loads(terraform("show", "-json", "state-change.plan"))
    changes = {c["address"]: c["change"] for c in plan["resource_changes"]}
    # exactly what enabling adds; nothing else drifts from what the apply left
    expected = {
        "module.pinhook.aws_cloudwatch_event_rule.state_change[0]",
        "module.pinhook.aws_cloudwatch_event_target.state_change[0]",
        "module.pinhook.aws_lambda_permission.state_change[0]",
        "module.pinhook.aws_iam_role_policy.function",
        "module.pinhook.aws_sqs_queue.dead_letters",
    }
    drift = {
        address: {
            k: (c["before"].get(k), v)
            for k, v in c["after"].items()
            if c["before"].get(k) != v
        }
        for address, c in changes.items()
        if c["actions"] != ["no-op"]
        and address not in expected
        and c["before"]
        and c["after"]
    }
    assert drift == {}
    assert {a for a, c in changes.items() if c["actions"] != ["no-op"]} == expected
    enabled = evaluate_template(TEMPLATE_PARAMETERS | {"StateChangeRule": "ENABLED"})
    rule = changes["module.pinhook.aws_cloudwatch_event_rule.state_change[0]"]
    assert rule["actions"] == ["create"]
    pattern = json.loads(rule["after"]["event_pattern"])
    assert pattern == enabled["InstanceStateRule"]["Properties"]["EventPattern"]
    assert rule["after"]["state"] == "ENABLED"
    for state, acts in [
        ("pending", True),
        ("running", True),
        ("shutting-down", True),
        ("terminated", True),
        ("stopping", False),
        ("stopped", False),
    ]:
        event = {
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": "i-0123456789abcdef0", "state": state},
        }
        assert matches(pattern, event) == acts, state
    assert changes["module.pinhook.aws_lambda_permission.state_change[0]"][
        "actions"
    ] == ["create"]
    assert changes["module.pinhook.aws_cloudwatch_event_target.state_change[0]"][
        "actions"
    ] == ["create"]
    policy = changes["module.pinhook.aws_iam_role_policy.function"]
    assert policy["actions"] == ["update"]
    got = [
        normalise_statement(s, {})
        for s in json.loads(policy["after"]["policy"])["Statement"]
    ]
    want = [
        normalise_statement(s, placeholders(stack))
        for s in template_statements(enabled)
    ]
    assert got == want
    # never unconditioned: each new statement on instances requires the pinhook:pin tag
    before = {
        s["Sid"] for s in template_statements(evaluate_template(TEMPLATE_PARAMETERS))
    }
    new = [s for s in got if s["Sid"] not in before]
    assert [s["Sid"] for s in new] == [
        "MembersArePinnedToTaggedInstancesWithoutAGroupOnly",
        "LeaseTagsOnTaggedInstancesWithoutAGroupOnly",
    ]
    assert new and all(
        s["Condition"]["Null"]["aws:ResourceTag/pinhook:pin"] == ["false"] for s in new
    )
    # undeliverable state changes may go to the dead-letter queue too
    queue = changes["module.pinhook.aws_sqs_queue.dead_letters"]
    statements = json.loads(queue["after"]["policy"])["Statement"]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in statements] == [
        stack["rule_arn"],
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{NAME}-state-change",
    ]


def pinhook_binary() -> Path | None:
    given = os.environ.get("PINHOOK_BINARY")
    if given:
        return Path(given) if Path(given).is_file() else None
    try:
        metadata = subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    binary = Path(json.loads(metadata.stdout)["target_directory"]) / "debug" / "pinhook"
    return binary if binary.is_file() else None


def test_pinhook_configured_as_the_module_configured_it_pins_a_launch(
    stack: dict[str, Any], aws: Any, endpoint: str, world: dict[str, str]
) -> None:
    binary = pinhook_binary()
    if binary is None:
        pytest.skip(
            "no pinhook binary (PINHOOK_BINARY, or debug/pinhook in cargo's target directory): build it with make test"
        )
    environment = aws.__getattr__("lambda").get_function_configuration(
        FunctionName=NAME
    )["Environment"]["Variables"]
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    with urllib.request.urlopen(
        f"{endpoint}/_pinhook/lifecycle-actions?group={GROUP}"
    ) as answer:
        actions = json.load(answer)["actions"]
    (launch,) = [a for a in actions if a["hook"] == "pinhook-launch"]
    event = launch["event"]
    instance = event["detail"]["EC2InstanceId"]
    # Auto Scaling published the action to the module's queue too, as the hooks were wired
    messages = aws.sqs.receive_message(
        QueueUrl=stack["notification_queue_url"], MaxNumberOfMessages=10
    )
    bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert any(
        b.get("EC2InstanceId") == instance
        and b.get("LifecycleHookName") == "pinhook-launch"
        for b in bodies
    ), bodies
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    env = {
        "PATH": os.environ.get("PATH", ""),
        **environment,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(
        [str(binary), "replay", f.name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    os.unlink(f.name)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "CONTINUE", summary
    assert summary["member"] == world["eni"], summary
    (eni,) = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[world["eni"]])[
        "NetworkInterfaces"
    ]
    assert eni["Attachment"]["InstanceId"] == instance
    state = aws.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])[
        "AutoScalingInstances"
    ]
    assert state[0]["LifecycleState"] == "InService"


def test_destroy_leaves_nothing_but_the_group_and_the_pool(
    stack: dict[str, Any], terraform: Terraform, aws: Any, world: dict[str, str]
) -> None:
    started = time.monotonic()
    terraform("destroy", "-auto-approve", "-input=false")
    terraform.applied = False  # type: ignore[attr-defined]
    print(f"\ndestroy: {time.monotonic() - started:.0f} s")
    lam = aws.__getattr__("lambda")
    assert [
        f
        for f in lam.list_functions()["Functions"]
        if f["FunctionName"].startswith(NAME)
    ] == []
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    assert [
        r for r in aws.iam.list_roles()["Roles"] if r["RoleName"].startswith(NAME)
    ] == []
    assert aws.events.list_rules(NamePrefix=NAME)["Rules"] == []
    assert aws.cloudwatch.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"] == []
    assert (
        aws.cloudwatch.list_dashboards(DashboardNamePrefix=NAME)["DashboardEntries"]
        == []
    )
    assert aws.sqs.list_queues(QueueNamePrefix=NAME).get("QueueUrls", []) == []
    assert [
        t for t in aws.sns.list_topics()["Topics"] if f":{NAME}" in t["TopicArn"]
    ] == []
    assert (
        aws.logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{NAME}")[
            "logGroups"
        ]
        == []
    )
    assert (
        aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)[
            "LifecycleHooks"
        ]
        == []
    )
    # what existed before Terraform is still there
    (group,) = aws.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP]
    )["AutoScalingGroups"]
    assert group["AutoScalingGroupName"] == GROUP
    (eni,) = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[world["eni"]])[
        "NetworkInterfaces"
    ]
    assert {"Key": "pinhook:pool", "Value": POOL} in eni["TagSet"]
