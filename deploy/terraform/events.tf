# The EventBridge rules that invoke pinhook, as template.yaml's LifecycleRule, SweepRule and
# StateChangeRule, with their targets and Lambda permissions.

locals {
  # template.yaml's LifecycleRule EventPattern: the lifecycle actions of the served groups (of
  # pinhook's hooks, when hook_names is given), and nothing else.
  lifecycle_pattern = {
    source = ["aws.autoscaling"]
    detail-type = [
      "EC2 Instance-launch Lifecycle Action",
      "EC2 Instance-terminate Lifecycle Action",
    ]
    detail = merge(
      {
        AutoScalingGroupName = var.group_names
        LifecycleTransition = [
          "autoscaling:EC2_INSTANCE_LAUNCHING",
          "autoscaling:EC2_INSTANCE_TERMINATING",
        ]
      },
      length(var.hook_names) > 0 ? { LifecycleHookName = var.hook_names } : {},
    )
  }

  # Instances without a group: the states that act (pending and running pin, shutting-down and
  # terminated release); stopping and stopped keep what the instance holds, so they never invoke
  # the function.
  state_change_pattern = {
    source      = ["aws.ec2"]
    detail-type = ["EC2 Instance State-change Notification"]
    detail = {
      state = ["pending", "running", "shutting-down", "terminated"]
    }
  }
}

resource "aws_cloudwatch_event_rule" "lifecycle" {
  name          = local.lifecycle_rule_name
  description   = "Lifecycle actions of the groups pinhook serves (of pinhook's hooks, when hook_names is given), and nothing else."
  event_pattern = jsonencode(local.lifecycle_pattern)
  state         = var.lifecycle_rule_state
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "lifecycle" {
  rule      = aws_cloudwatch_event_rule.lifecycle.name
  target_id = "pinhook"
  arn       = aws_lambda_function.pinhook.arn

  # Delivery to Lambda is retried for up to an hour (a lifecycle action waits at most its
  # heartbeat timeout anyway), then the event goes to the dead-letter queue.
  retry_policy {
    maximum_retry_attempts       = 20
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letters.arn
  }
}

resource "aws_lambda_permission" "lifecycle" {
  statement_id  = "lifecycle-rule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pinhook.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.lifecycle.arn
}

resource "aws_cloudwatch_event_rule" "sweep" {
  count               = local.sweep ? 1 : 0
  name                = "${var.function_name}-sweep"
  description         = "pinhook's sweep of every pool of the groups it serves. A missed run needs no retry: the next one does the same work."
  schedule_expression = var.sweep_schedule
  state               = "ENABLED"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "sweep" {
  count     = local.sweep ? 1 : 0
  rule      = aws_cloudwatch_event_rule.sweep[0].name
  target_id = "pinhook-sweep"
  arn       = aws_lambda_function.pinhook.arn

  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "sweep" {
  count         = local.sweep ? 1 : 0
  statement_id  = "sweep-rule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pinhook.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep[0].arn
}

resource "aws_cloudwatch_event_rule" "state_change" {
  count         = local.state_change ? 1 : 0
  name          = local.state_change_rule_name
  description   = "State changes of EC2 instances, for pinhook's instances without an Auto Scaling group (tagged pinhook:pin): the function reads each instance and ignores the others."
  event_pattern = jsonencode(local.state_change_pattern)
  state         = var.state_change_rule
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "state_change" {
  count     = local.state_change ? 1 : 0
  rule      = aws_cloudwatch_event_rule.state_change[0].name
  target_id = "pinhook-state-change"
  arn       = aws_lambda_function.pinhook.arn

  # As for lifecycle actions: retried for an hour, then the dead-letter queue. Nothing waits for
  # pinhook here, and the sweep covers a state change that never arrives.
  retry_policy {
    maximum_retry_attempts       = 20
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letters.arn
  }
}

resource "aws_lambda_permission" "state_change" {
  count         = local.state_change ? 1 : 0
  statement_id  = "state-change-rule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pinhook.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.state_change[0].arn
}
