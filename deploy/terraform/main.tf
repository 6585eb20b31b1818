# pinhook: the function, its log group and its role, as template.yaml's PinhookFunction and
# PinhookLogGroup create them. The role's statements are template.yaml's, statement by statement
# (deploy/terraform/tests/test_apply.py compares them).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  # name, not region: the attribute every provider release since 5.0 has.
  region  = data.aws_region.current.name
  account = data.aws_caller_identity.current.account_id
  ec2_arn = "arn:${local.partition}:ec2:${local.region}:${local.account}"

  # ARNs built from the names the module gives, so the role's and the queue's policies are known
  # at plan time (a plan shows every statement), and IAM does not wait for the queues.
  dead_letters_name      = "${var.function_name}-dead-letters"
  lifecycle_queue_name   = "${var.function_name}-lifecycle"
  dead_letters_arn       = "arn:${local.partition}:sqs:${local.region}:${local.account}:${local.dead_letters_name}"
  lifecycle_queue_arn    = "arn:${local.partition}:sqs:${local.region}:${local.account}:${local.lifecycle_queue_name}"
  lifecycle_rule_name    = "${var.function_name}-lifecycle"
  state_change_rule_name = "${var.function_name}-state-change"
  lifecycle_rule_arn     = "arn:${local.partition}:events:${local.region}:${local.account}:rule/${local.lifecycle_rule_name}"
  state_change_rule_arn  = "arn:${local.partition}:events:${local.region}:${local.account}:rule/${local.state_change_rule_name}"

  sweep        = var.sweep_schedule != ""
  state_change = var.state_change_rule != "NONE"

  groups = join(",", var.group_names)

  environment = merge(var.environment_variables, {
    PINHOOK_METRICS_NAMESPACE = var.metrics_namespace
    # The groups the sweep reads: the same list the lifecycle rule is narrowed to.
    PINHOOK_GROUPS = local.groups
  })
}

resource "aws_lambda_function" "pinhook" {
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to the dead-letter queue through the on-failure destination (aws_lambda_function_event_invoke_config), which AWS recommends over a function DLQ and which also carries the error; failed queue records go to the queue's own DLQ.
  #checkov:skip=CKV_AWS_117:The function calls only AWS APIs (EC2, Auto Scaling); in a VPC it would need a NAT gateway or interface endpoints for nothing gained.
  #checkov:skip=CKV_AWS_173:The environment holds no secret: group names, a namespace and timings, which the function logs at start-up anyway.
  #checkov:skip=CKV_AWS_50:pinhook reports through JSON logs and EMF metrics; X-Ray would only trace the Lambda service's own segment (the function has no X-Ray SDK), at a cost. The SAM template has no tracing either.
  #checkov:skip=CKV_AWS_272:make release and cargo-lambda build an unsigned zip; code signing needs an AWS Signer profile and a signed artefact, which a deployment can add. The SAM template has none either.
  function_name = var.function_name
  description   = "Pins pooled ENIs and Elastic IPs to Auto Scaling instances through lifecycle hooks."
  role          = aws_iam_role.function.arn
  handler       = "bootstrap"
  runtime       = "provided.al2023"
  architectures = ["arm64"]

  filename          = var.zip_path
  source_code_hash  = var.zip_path == null ? null : filebase64sha256(var.zip_path)
  s3_bucket         = var.s3_bucket
  s3_key            = var.s3_key
  s3_object_version = var.s3_object_version

  # The work is waiting on AWS: an attachment settles in seconds, and a launch whose members are
  # all held by terminating instances waits for their release. 300 s covers that with room to
  # spare, far below the hook's heartbeat timeout; pinhook completes the action
  # PINHOOK_COMPLETION_RESERVE_MS before this deadline whatever happens.
  timeout = 300
  # An I/O-bound Rust binary uses about 20 MB; 128 MB is the smallest, cheapest size.
  memory_size = 128
  # A burst of launches runs in parallel up to this; beyond it invocations wait and are retried,
  # which keeps a large scale-out inside the account's EC2 request budget.
  reserved_concurrent_executions = var.reserved_concurrency

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.pinhook.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  environment {
    variables = local.environment
  }

  tags = var.tags

  # The log group exists first, so Lambda never creates one without retention; the role can
  # write logs and reach the dead-letter queue before the first invocation.
  depends_on = [
    aws_iam_role_policy.function,
    aws_iam_role_policy_attachment.function_logs,
  ]
}

resource "aws_cloudwatch_log_group" "pinhook" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest. The logs hold resource ids and outcomes, no secret; a customer managed KMS key would add a key policy and a cost.
  #checkov:skip=CKV_AWS_338:Retention is a choice (log_retention_days, 30 days as in the SAM template): the logs are for incidents, and a year of them costs without helping.
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# EventBridge invokes asynchronously. An invocation that returns an error (AWS kept failing, or
# the completion did) is retried twice by Lambda, then sent to the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "pinhook" {
  function_name                = aws_lambda_function.pinhook.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letters.arn
    }
  }
}

resource "aws_iam_role" "function" {
  name               = var.function_name
  description        = "pinhook's function: pins pool members to the instances of ${local.groups}."
  assume_role_policy = data.aws_iam_policy_document.function_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# What AWS SAM attaches to every function it creates a role for (logs:CreateLogGroup,
# CreateLogStream, PutLogEvents), so both paths give the same role. The function writes only to
# its own log group, which exists before it.
resource "aws_iam_role_policy_attachment" "function_logs" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "function" {
  name   = "pinhook"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# template.yaml's PinhookFunction Policies, statement by statement and in the same order; the
# Sids are the template's.
data "aws_iam_policy_document" "function" {
  statement {
    sid    = "DescribeCallsHaveNoResourceLevelPermissions"
    effect = "Allow"
    actions = [
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeAddresses",
      "ec2:DescribeInstances",
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLifecycleHooks",
      "autoscaling:DescribeWarmPool",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "OnlyPoolInterfacesAreAttachedDetachedAndTagged"
    effect    = "Allow"
    actions   = ["ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface"]
    resources = ["${local.ec2_arn}:network-interface/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/pinhook:pool"
      values   = ["false"]
    }
  }

  statement {
    sid       = "OnlyPoolAddressesAreAssociatedAndDisassociated"
    effect    = "Allow"
    actions   = ["ec2:AssociateAddress", "ec2:DisassociateAddress"]
    resources = ["${local.ec2_arn}:elastic-ip/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/pinhook:pool"
      values   = ["false"]
    }
  }

  statement {
    sid       = "MembersArePinnedToInstancesOfTheServedGroupsOnly"
    effect    = "Allow"
    actions   = ["ec2:AttachNetworkInterface", "ec2:AssociateAddress"]
    resources = ["${local.ec2_arn}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:autoscaling:groupName"
      values   = var.group_names
    }
  }

  # A release takes a pool member (conditioned above on pinhook:pool) off an instance. The sweep
  # releases members from instances that have left the groups (detached, moved elsewhere), which
  # need not carry aws:autoscaling:groupName any more.
  statement {
    sid       = "PoolMembersAreReleasedFromAnyInstance"
    effect    = "Allow"
    actions   = ["ec2:DetachNetworkInterface", "ec2:DisassociateAddress"]
    resources = ["${local.ec2_arn}:instance/*"]
  }

  # An address goes on the instance's own interface (the primary one, or one pinhook attached):
  # the primary interface carries neither the pool tag nor the group tag, so no tag condition can
  # single it out. The address itself is conditioned above.
  statement {
    sid       = "AddressesGoOnTheInstancesInterfaces"
    effect    = "Allow"
    actions   = ["ec2:AssociateAddress", "ec2:DisassociateAddress"]
    resources = ["${local.ec2_arn}:network-interface/*"]
  }

  statement {
    sid       = "HolderTagOnPoolMembersOnly"
    effect    = "Allow"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.ec2_arn}:network-interface/*", "${local.ec2_arn}:elastic-ip/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/pinhook:pool"
      values   = ["false"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["pinhook:holder", "pinhook:idle-since"]
    }
  }

  statement {
    sid       = "LeaseTagsOnInstancesOfTheServedGroupsOnly"
    effect    = "Allow"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.ec2_arn}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:autoscaling:groupName"
      values   = var.group_names
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["pinhook:eni", "pinhook:eip"]
    }
  }

  statement {
    sid     = "LifecycleActionsOfTheServedGroupsOnly"
    effect  = "Allow"
    actions = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [
      for name in var.group_names :
      "arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${name}"
    ]
  }

  statement {
    sid       = "FailedInvocationsToTheDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [local.dead_letters_arn]
  }

  dynamic "statement" {
    for_each = var.notification_queue ? [local.lifecycle_queue_arn] : []
    content {
      sid    = "TheEventSourceMappingDrainsTheLifecycleQueue"
      effect = "Allow"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
      ]
      resources = [statement.value]
    }
  }

  # Instances without a group (state_change_rule): pinhook pins to an instance that carries
  # pinhook:pin and no aws:autoscaling:groupName (a group's instance is served by its group's
  # hooks), as the statements above pin only to instances of the served groups. Releasing from
  # such an instance needs nothing more: PoolMembersAreReleasedFromAnyInstance covers it, the
  # member being conditioned on pinhook:pool.
  dynamic "statement" {
    for_each = local.state_change ? ["instance/*"] : []
    content {
      sid       = "MembersArePinnedToTaggedInstancesWithoutAGroupOnly"
      effect    = "Allow"
      actions   = ["ec2:AttachNetworkInterface", "ec2:AssociateAddress"]
      resources = ["${local.ec2_arn}:${statement.value}"]
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/pinhook:pin"
        values   = ["false"]
      }
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/aws:autoscaling:groupName"
        values   = ["true"]
      }
    }
  }

  dynamic "statement" {
    for_each = local.state_change ? ["instance/*"] : []
    content {
      sid       = "LeaseTagsOnTaggedInstancesWithoutAGroupOnly"
      effect    = "Allow"
      actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
      resources = ["${local.ec2_arn}:${statement.value}"]
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/pinhook:pin"
        values   = ["false"]
      }
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/aws:autoscaling:groupName"
        values   = ["true"]
      }
      condition {
        test     = "ForAllValues:StringEquals"
        variable = "aws:TagKeys"
        values   = ["pinhook:eni", "pinhook:eip"]
      }
    }
  }
}
