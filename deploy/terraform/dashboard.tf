# An optional CloudWatch dashboard, as template.yaml's Dashboard: pinhook's metrics through
# Metrics Insights queries (every pool without naming one, as the alarms read them), the
# function's invocations, errors and throttles, and the dead-letter queue.

locals {
  dashboard_body = {
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Lifecycle actions"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            [{ id = "pinned", label = "Pinned", expression = "SELECT SUM(Pinned) FROM SCHEMA(${local.namespace}, Pool)" }],
            [{ id = "released", label = "Released", expression = "SELECT SUM(Released) FROM SCHEMA(${local.namespace}, Pool)" }],
            [{ id = "failed", label = "FailedActions", expression = "SELECT MAX(FailedActions) FROM ${local.namespace}" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Pools"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            [{ id = "exhausted", label = "PoolExhausted", expression = "SELECT SUM(PoolExhausted) FROM SCHEMA(${local.namespace}, Pool)" }],
            [{ id = "conflicts", label = "ClaimConflicts", expression = "SELECT SUM(ClaimConflicts) FROM SCHEMA(${local.namespace}, Pool)" }],
            [{ id = "release_failed", label = "ReleaseFailed", expression = "SELECT MAX(ReleaseFailed) FROM ${local.namespace}" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Each sweep, per pool: free members (fewest in an AZ) and drift"
          region = local.region
          view   = "timeSeries"
          stat   = "Minimum"
          period = 300
          metrics = [
            [{ id = "free", expression = "SELECT MIN(FreeMembers) FROM SCHEMA(${local.namespace}, Pool) GROUP BY Pool" }],
            [{ id = "drift", expression = "SELECT SUM(Drift) FROM SCHEMA(${local.namespace}, Pool) GROUP BY Pool" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "The function and its dead-letter queue"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.function_name],
            ["AWS/Lambda", "Errors", "FunctionName", var.function_name],
            ["AWS/Lambda", "Throttles", "FunctionName", var.function_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dead_letters.name, { stat = "Maximum" }],
          ]
        }
      },
    ]
  }
}

resource "aws_cloudwatch_dashboard" "pinhook" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = var.function_name
  dashboard_body = jsonencode(local.dashboard_body)
}
