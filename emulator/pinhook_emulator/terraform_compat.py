"""What the Terraform AWS provider, and the module it applies, need of moto.

`terraform apply` of deploy/terraform against the emulator (scripts/terraform-test) meets places
where moto lacks an API or answers differently from AWS. `install()` patches moto for exactly
those and nothing else; each patch says which call needs it and what AWS does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from moto.awslambda import models as lambda_models
from moto.iam import models as iam_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.sqs import models as sqs_models

# The AWS managed policies the module attaches (AWS SAM attaches the same one to the role it
# creates for a function). moto loads AWS's managed policies only when asked
# (MOTO_IAM_LOAD_MANAGED_POLICIES), and then all of them, a second or more for every account's IAM
# backend, so AttachRolePolicy answers NoSuchEntity; AWS always has them.
MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole",)


@functools.cache
def _managed_policy_data() -> dict[str, Any]:
    # Every IAM backend (one per account, made again at each reset) needs these; moto's data is
    # megabytes of JSON, so it is parsed once per process, not once per backend.
    data = json.loads(aws_managed_policies_data)
    return {name: data[name] for name in MANAGED_POLICIES}


def _with_managed_policies(original: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    def init(self: Any) -> list[Any]:
        loaded = original(self)
        if loaded:
            return loaded
        return [
            iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
            for name, data in _managed_policy_data().items()
        ]

    return init


# Lambda's advanced logging controls (aws_lambda_function's logging_config, the SAM template's
# LoggingConfig): moto drops LoggingConfig, so GetFunction answers without it and every plan
# after the apply wants to set it again. AWS keeps it, and answers with its defaults when a
# function has none: Text logs to /aws/lambda/<name>; JSON logs at INFO.
def _logging_config(function: Any, given: dict[str, Any] | None) -> dict[str, Any]:
    config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function.function_name}"}
    config.update(given or {})
    if config["LogFormat"] == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    else:
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    return config


def _keeping_logging_config_on_create(original: Callable[..., None]) -> Callable[..., None]:
    def init(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original(self, account_id, spec, *args, **kwargs)
        self.logging_config = _logging_config(self, spec.get("LoggingConfig"))

    return init


def _answering_logging_config(
    original: Callable[..., dict[str, Any]],
) -> Callable[..., dict[str, Any]]:
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original(self, *args, **kwargs)
        config["LoggingConfig"] = getattr(self, "logging_config", None) or _logging_config(self, None)
        return config

    return get_configuration


def _updating_logging_config(
    original: Callable[..., dict[str, Any]],
) -> Callable[..., dict[str, Any]]:
    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "LoggingConfig" in config_updates:
            current = getattr(self, "logging_config", None) or {}
            self.logging_config = _logging_config(self, {**current, **config_updates["LoggingConfig"]})
        return original(self, config_updates)

    return update_configuration


# An SQS queue with a Lambda event source mapping (the module's notification queue): moto runs the
# function in Docker inside SendMessage, receiving every visible message of the queue again each
# time (so their receive counts climb to the redrive limit and they move to the dead-letter queue
# unprocessed) and, without Docker, writing "error running docker" to the function's log group.
# AWS's mapping polls the queue on its own and the sender never waits for the function. The
# emulator runs no function code: the messages stay in the queue, where a test (or
# `pinhook replay` of an SQS batch) reads them as the mapping would.
def _without_synchronous_invoke(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def add_message(self: Any, message: Any) -> None:
        mappings = self.lambda_event_source_mappings
        self.lambda_event_source_mappings = {}
        try:
            original(self, message)
        finally:
            self.lambda_event_source_mappings = mappings

    return add_message


# aws_sqs_queue's redrive_policy (the notification queue's): moto answers RedrivePolicy as
# json.dumps writes it, with a space after each separator, where AWS answers compact JSON
# ({"deadLetterTargetArn":"arn:…","maxReceiveCount":5}), so the provider sees a difference from
# its configuration and every plan after the apply wants to update the queue.
def _compact_redrive_policy(original: property) -> property:
    def attributes(self: Any) -> dict[str, Any]:
        result = original.fget(self)
        if result.get("RedrivePolicy"):
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    return property(attributes)


def install() -> None:
    """Patches moto for the Terraform AWS provider; call once, before the server starts."""
    iam_models.IAMBackend._init_aws_policies = _with_managed_policies(
        iam_models.IAMBackend._init_aws_policies
    )
    function = lambda_models.LambdaFunction
    function.__init__ = _keeping_logging_config_on_create(function.__init__)
    function.get_configuration = _answering_logging_config(function.get_configuration)
    function.update_configuration = _updating_logging_config(function.update_configuration)
    sqs_models.Queue.add_message = _without_synchronous_invoke(sqs_models.Queue.add_message)
    sqs_models.Queue.attributes = _compact_redrive_policy(sqs_models.Queue.attributes)
