output "function_arn" {
  description = "ARN of the pinhook function (template output: FunctionArn)."
  value       = aws_lambda_function.pinhook.arn
}

output "function_name" {
  description = "Name of the pinhook function."
  value       = aws_lambda_function.pinhook.function_name
}

output "role_arn" {
  description = "ARN of the function's role."
  value       = aws_iam_role.function.arn
}

output "role_name" {
  description = "Name of the function's role."
  value       = aws_iam_role.function.name
}

output "log_group_name" {
  description = "The function's log group: JSON logs and the EMF metric lines."
  value       = aws_cloudwatch_log_group.pinhook.name
}

output "rule_arn" {
  description = "ARN of the EventBridge rule that sends the groups' lifecycle actions to pinhook (template output: RuleArn)."
  value       = aws_cloudwatch_event_rule.lifecycle.arn
}

output "sweep_rule_arn" {
  description = "ARN of the sweep's schedule rule; null when sweep_schedule is empty."
  value       = one(aws_cloudwatch_event_rule.sweep[*].arn)
}

output "state_change_rule_arn" {
  description = "ARN of the EC2 state-change rule for instances without a group; null when state_change_rule is NONE."
  value       = one(aws_cloudwatch_event_rule.state_change[*].arn)
}

output "dead_letter_queue_url" {
  description = "URL of the queue where events that could not be handled land (template output: DeadLetterQueueUrl)."
  value       = aws_sqs_queue.dead_letters.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letters.arn
}

output "notification_queue_arn" {
  description = "The notification_target_arn for the hooks of existing groups, with notification_queue (template output: LifecycleQueueArn); null without."
  value       = one(aws_sqs_queue.lifecycle[*].arn)
}

output "notification_queue_url" {
  description = "URL of the lifecycle notification queue; null without notification_queue."
  value       = one(aws_sqs_queue.lifecycle[*].url)
}

output "notification_role_arn" {
  description = "The role_arn for the hooks of existing groups that publish to the queue (template output: LifecycleNotificationRoleArn); null without notification_queue."
  value       = one(aws_iam_role.lifecycle_notifications[*].arn)
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify: the one the module created (create_alarm_topic), else alarm_topic_arn; null with neither."
  value       = try(aws_sns_topic.alarms[0].arn, var.alarm_topic_arn)
}

output "alarm_arns" {
  description = "ARNs of the alarms the module created, by name."
  value = {
    for alarm in concat(
      [aws_cloudwatch_metric_alarm.dead_letters, aws_cloudwatch_metric_alarm.failed_actions, aws_cloudwatch_metric_alarm.pool_exhausted, aws_cloudwatch_metric_alarm.release_failed],
      aws_cloudwatch_metric_alarm.lifecycle_dead_letters,
      aws_cloudwatch_metric_alarm.drift,
    ) : alarm.alarm_name => alarm.arn
  }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard; null without create_dashboard."
  value       = one(aws_cloudwatch_dashboard.pinhook[*].dashboard_name)
}

output "lifecycle_hooks" {
  description = "The hooks the module created, as \"group/hook name\"."
  value       = sort([for hook in aws_autoscaling_lifecycle_hook.pinhook : "${hook.autoscaling_group_name}/${hook.name}"])
}
