# The alarms, as template.yaml's: the dead-letter queues, and pinhook's own metrics (CloudWatch
# Embedded Metric Format lines in the function's log, namespace metrics_namespace).
#
# Which dimensions each metric carries decides how an alarm can see it (src/metrics.rs): a
# lifecycle action whose pool is known emits its counts twice, under [Pool] and under
# [Pool, AvailabilityZone] (once the AZ is known); one whose metadata could not be read (no pool)
# emits them under no dimension at all. The sweep emits Drift per pool and AZ the same way (an
# Elastic IP pool under [Pool] only). An alarm on a plain metric names every dimension, so it
# would need one alarm per pool, and the pools are in the hooks' metadata, which neither
# deploy path knows. So each alarm is a CloudWatch Metrics Insights query, which aggregates
# over every series that matches:
#
# * FailedActions and ReleaseFailed: MAX over the whole namespace, so the no-pool series (bad
#   metadata) counts too; MAX rather than SUM because one event is in two series (Pool and
#   Pool+AZ), and "> 0" is the question.
# * PoolExhausted and Drift: SUM over SCHEMA(namespace, Pool), the series with exactly the Pool
#   dimension, where each event or sweep appears once; both always carry a pool.
#
# A sweep's repair that fails emits no metric of its own today: it shows as Drift the next sweep
# finds again, which is what the drift alarm's three periods in a row catch.

locals {
  alarm_actions = compact([
    var.alarm_topic_arn == null ? "" : var.alarm_topic_arn,
    var.create_alarm_topic ? aws_sns_topic.alarms[0].arn : "",
  ])

  # The sweep's interval, for a rate() schedule: one sweep per period of the drift alarm.
  sweep_rate         = try(regex("^rate\\(([0-9]+) (minute|hour|day)s?\\)$", var.sweep_schedule), null)
  sweep_rate_seconds = local.sweep_rate == null ? null : tonumber(local.sweep_rate[0]) * lookup({ minute = 60, hour = 3600, day = 86400 }, local.sweep_rate[1])
  drift_alarm_period = coalesce(var.drift_alarm_period, local.sweep_rate_seconds, 300)

  namespace = "\"${var.metrics_namespace}\""
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:Alarm notifications carry alarm names and states, no secret. CloudWatch cannot publish to a topic under the AWS managed key aws/sns, and a customer managed key would add a key policy and a monthly cost.
  count = var.create_alarm_topic ? 1 : 0
  name  = "${var.function_name}-alarms"
  tags  = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.function_name}-dead-letters"
  alarm_description   = "A lifecycle event could not be handled: an instance may have waited for its hook's timeout. Inspect the message in the dead-letter queue and the function's logs."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letters.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lifecycle_dead_letters" {
  count               = var.notification_queue ? 1 : 0
  alarm_name          = "${var.function_name}-lifecycle-dead-letters"
  alarm_description   = "A lifecycle notification failed five deliveries: an instance may have waited for its hook's timeout. Replay the message with `pinhook replay` and read the function's logs."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.lifecycle_dead_letters[0].name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "failed_actions" {
  alarm_name          = "${var.function_name}-failed-actions"
  alarm_description   = "pinhook completed a lifecycle action with the failure outcome (on_failure: the launch abandoned, or continued without its member): pool empty in the AZ, bad metadata, or permission denied. The function's logs name the instance and the reason."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "failed"
    expression  = "SELECT MAX(FailedActions) FROM ${local.namespace}"
    period      = 60
    return_data = true
  }
}

resource "aws_cloudwatch_metric_alarm" "pool_exhausted" {
  alarm_name          = "${var.function_name}-pool-exhausted"
  alarm_description   = "A launch found no free member of its pool in its Availability Zone. Add members to the pool there (pinhook status shows each pool per AZ), or lower the group's maximum size."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "exhausted"
    expression  = "SELECT SUM(PoolExhausted) FROM SCHEMA(${local.namespace}, Pool)"
    period      = 60
    return_data = true
  }
}

resource "aws_cloudwatch_metric_alarm" "release_failed" {
  alarm_name          = "${var.function_name}-release-failed"
  alarm_description   = "A release failed: a member could not be taken back from a leaving instance and is left to the sweep. If the drift alarm follows, the sweep cannot repair it either; pinhook sweep --dry-run shows what is held by whom."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "release_failed"
    expression  = "SELECT MAX(ReleaseFailed) FROM ${local.namespace}"
    period      = 60
    return_data = true
  }
}

resource "aws_cloudwatch_metric_alarm" "drift" {
  count               = local.sweep ? 1 : 0
  alarm_name          = "${var.function_name}-drift"
  alarm_description   = "Three sweeps in a row found pools that needed repair: something keeps changing pools behind pinhook's back, or a repair keeps failing. pinhook sweep --dry-run lists the repairs."
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "drift"
    expression  = "SELECT SUM(Drift) FROM SCHEMA(${local.namespace}, Pool)"
    period      = local.drift_alarm_period
    return_data = true
  }

  lifecycle {
    precondition {
      condition     = local.drift_alarm_period % 60 == 0 && local.drift_alarm_period <= 3600
      error_message = "The drift alarm's period (the sweep's interval, or drift_alarm_period) must be a multiple of 60 of at most 3600 seconds: CloudWatch evaluates a Metrics Insights alarm over its last three hours."
    }
  }
}
