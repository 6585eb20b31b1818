# The dead-letter queue with its policy, and the optional lifecycle notification queue with its dead-letter
# queue, publishing role and event source mapping: template.yaml's DeadLetterQueue,
# DeadLetterQueuePolicy, LifecycleQueue, LifecycleQueueDeadLetters, LifecycleNotificationRole and
# LifecycleQueueMapping.

resource "aws_sqs_queue" "dead_letters" {
  #checkov:skip=CKV_AWS_27:Encrypted at rest with SSE-SQS (sqs_managed_sse_enabled). EventBridge cannot publish to a queue under the AWS managed key aws/sqs, and a customer managed key would add a key policy and a monthly cost for no gain.
  name                      = local.dead_letters_name
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  # template.yaml's DeadLetterQueuePolicy, set with the queue rather than as an
  # aws_sqs_queue_policy: one wait for SQS to settle instead of two.
  policy = data.aws_iam_policy_document.dead_letters.json
  tags   = var.tags
}

data "aws_iam_policy_document" "dead_letters" {
  statement {
    sid       = "UndeliverableLifecycleEvents"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [local.dead_letters_arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.lifecycle_rule_arn]
    }
  }

  dynamic "statement" {
    for_each = local.state_change ? [local.state_change_rule_arn] : []
    content {
      sid       = "UndeliverableStateChanges"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [local.dead_letters_arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [statement.value]
      }
    }
  }
}

resource "aws_sqs_queue" "lifecycle" {
  #checkov:skip=CKV_AWS_27:Encrypted at rest with SSE-SQS (sqs_managed_sse_enabled). Auto Scaling cannot publish to a queue under the AWS managed key aws/sqs without a key policy of its own, and a customer managed key would add a key policy and a monthly cost for no gain.
  count = var.notification_queue ? 1 : 0
  name  = local.lifecycle_queue_name
  # Six times the function's timeout, as Lambda recommends for a queue it drains.
  visibility_timeout_seconds = 1800
  # A lifecycle action waits at most its heartbeat timeout; a day covers any setting.
  message_retention_seconds = 86400
  # SSE-SQS: encrypted at rest with keys SQS manages, which Auto Scaling can publish to without a
  # KMS key policy.
  sqs_managed_sse_enabled = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.lifecycle_dead_letters[0].arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

resource "aws_sqs_queue" "lifecycle_dead_letters" {
  #checkov:skip=CKV_AWS_27:Encrypted at rest with SSE-SQS (sqs_managed_sse_enabled), as the queue it receives from. A customer managed key would add a key policy and a monthly cost for no gain.
  count                     = var.notification_queue ? 1 : 0
  name                      = "${var.function_name}-lifecycle-dead-letters"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# The role Auto Scaling assumes to publish lifecycle notifications to the queue: the hooks'
# role_arn.
resource "aws_iam_role" "lifecycle_notifications" {
  count              = var.notification_queue ? 1 : 0
  name               = "${var.function_name}-lifecycle-notifications"
  description        = "Auto Scaling publishes pinhook's lifecycle notifications to its queue with this role."
  assume_role_policy = data.aws_iam_policy_document.autoscaling_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "autoscaling_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["autoscaling.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "lifecycle_notifications" {
  count  = var.notification_queue ? 1 : 0
  name   = "PublishLifecycleNotifications"
  role   = aws_iam_role.lifecycle_notifications[0].id
  policy = data.aws_iam_policy_document.publish_lifecycle_notifications[0].json
}

data "aws_iam_policy_document" "publish_lifecycle_notifications" {
  count = var.notification_queue ? 1 : 0
  statement {
    effect    = "Allow"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
    resources = [local.lifecycle_queue_arn]
  }
}

resource "aws_lambda_event_source_mapping" "lifecycle" {
  count                              = var.notification_queue ? 1 : 0
  event_source_arn                   = aws_sqs_queue.lifecycle[0].arn
  function_name                      = aws_lambda_function.pinhook.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 0
  # Only the records a redelivery could fix come back; the others are deleted.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.reserved_concurrency
  }
}
