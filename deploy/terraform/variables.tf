# The module's inputs. Each mirrors a parameter of template.yaml (named in its description), so
# the two deploy paths create the same resources from the same choices.

variable "group_names" {
  description = "Names of the Auto Scaling groups pinhook serves (template: GroupNames). Only their lifecycle actions reach the function, and the role can only complete their actions and tag their instances. The sweep reads the same list (PINHOOK_GROUPS)."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.group_names) > 0
    error_message = "group_names needs at least one Auto Scaling group name."
  }

  validation {
    # PINHOOK_GROUPS is comma-separated, so a comma cannot be part of a name.
    condition     = alltrue([for name in var.group_names : can(regex("^[^,]{1,255}$", name))])
    error_message = "Each group name is 1 to 255 characters without a comma."
  }
}

variable "hook_names" {
  description = "Optional names of pinhook's lifecycle hooks (template: HookNames). When given, the EventBridge rule matches only those hooks' actions, so other tools' hooks on the same groups do not invoke the function. With lifecycle_hooks, include pinhook-launch and pinhook-terminate."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for name in var.hook_names : can(regex("^[A-Za-z0-9\\-_/]{1,255}$", name))])
    error_message = "A lifecycle hook name is 1 to 255 letters, digits, '-', '_' or '/'."
  }

  validation {
    condition     = length(var.hook_names) == 0 || length(var.lifecycle_hooks) == 0 || length(setsubtract(["pinhook-launch", "pinhook-terminate"], var.hook_names)) == 0
    error_message = "The rule is narrowed to hook_names, so with lifecycle_hooks it must include pinhook-launch and pinhook-terminate."
  }
}

variable "function_name" {
  description = "Name of the Lambda function; also the prefix of the names of the role, rules, queues and alarms the module creates."
  type        = string
  default     = "pinhook"
  nullable    = false

  validation {
    # The longest name derived from it, the notification role's (24 more characters:
    # "-lifecycle-notifications"), must fit IAM's 64.
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.function_name))
    error_message = "function_name is 1 to 40 letters, digits, '-' or '_'."
  }
}

variable "zip_path" {
  description = "Path of the function's zip (make release builds target/lambda/pinhook/bootstrap.zip). Give either zip_path, or s3_bucket and s3_key."
  type        = string
  default     = null

  validation {
    condition     = (var.zip_path != null) != (var.s3_bucket != null || var.s3_key != null)
    error_message = "Give exactly one source for the function's code: zip_path, or s3_bucket with s3_key."
  }

  validation {
    condition     = var.zip_path == null || endswith(coalesce(var.zip_path, "-"), ".zip")
    error_message = "zip_path is the path of a .zip file (make release: target/lambda/pinhook/bootstrap.zip)."
  }
}

variable "s3_bucket" {
  description = "S3 bucket holding the function's zip, with s3_key (instead of zip_path). In the function's Region."
  type        = string
  default     = null

  validation {
    condition     = (var.s3_bucket == null) == (var.s3_key == null)
    error_message = "s3_bucket and s3_key go together."
  }
}

variable "s3_key" {
  description = "Key of the function's zip in s3_bucket."
  type        = string
  default     = null
}

variable "s3_object_version" {
  description = "Optional version of the S3 object, for a versioned bucket: a new version deploys new code."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the function's log group keeps its logs (template: 30). 0 keeps them forever."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of CloudWatch Logs' retention periods: 0 (forever), 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "sweep_schedule" {
  description = "How often the sweep runs over every pool of group_names and of the instances tagged pinhook:pin without a group, as an EventBridge schedule expression (template: SweepSchedule). An empty string turns the sweep, its rule and its drift alarm off."
  type        = string
  default     = "rate(5 minutes)"
  nullable    = false

  validation {
    condition     = can(regex("^$|^(rate|cron)\\(.+\\)$", var.sweep_schedule))
    error_message = "sweep_schedule is rate(...), cron(...) or empty (no sweep)."
  }
}

variable "notification_queue" {
  description = "true creates an SQS queue for the hooks' NotificationTargetARN with its own dead-letter queue and alarm, the role Auto Scaling publishes to it with, and the event source mapping that drains it into the function with ReportBatchItemFailures (template: NotificationQueue). Hooks created with lifecycle_hooks then publish to it."
  type        = bool
  default     = false
  nullable    = false
}

variable "lifecycle_rule_state" {
  description = "ENABLED or DISABLED: the EventBridge rule for the groups' lifecycle actions (template: LifecycleRuleState). DISABLED when every hook publishes to the queue, so each action arrives once."
  type        = string
  default     = "ENABLED"
  nullable    = false

  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.lifecycle_rule_state)
    error_message = "lifecycle_rule_state is ENABLED or DISABLED."
  }
}

variable "state_change_rule" {
  description = "Instances without an Auto Scaling group (template: StateChangeRule): ENABLED or DISABLED creates an EventBridge rule for EC2 Instance State-change Notifications (pending, running, shutting-down, terminated), its Lambda permission, and the role's statements for instances tagged pinhook:pin; NONE (the default) creates none of them."
  type        = string
  default     = "NONE"
  nullable    = false

  validation {
    condition     = contains(["ENABLED", "DISABLED", "NONE"], var.state_change_rule)
    error_message = "state_change_rule is ENABLED, DISABLED or NONE."
  }
}

variable "reserved_concurrency" {
  description = "The most copies of the function that run at once (template: ReservedConcurrency), also the queue mapping's maximum concurrency. Five keep a scale-out of a thousand instances at the pace EC2's rate limits allow."
  type        = number
  default     = 5
  nullable    = false

  validation {
    # The event source mapping's maximum concurrency is at least 2.
    condition     = var.reserved_concurrency >= 2 && floor(var.reserved_concurrency) == var.reserved_concurrency
    error_message = "reserved_concurrency is a whole number of at least 2."
  }
}

variable "lifecycle_hooks" {
  description = "Optional: pinhook's launch and terminate hooks (pinhook-launch, pinhook-terminate) to create on existing groups, keyed by any label you choose (template: HookGroupName, HookMetadata, HookHeartbeatTimeout). notification_metadata is pinhook's per-hook configuration as JSON, e.g. jsonencode({ pin = \"eni\", pool = \"licence\" }). A hook applies to instances launched after it exists: a new group declares its hooks as initial_lifecycle_hook blocks instead."
  type = map(object({
    group_name            = string
    notification_metadata = string
    heartbeat_timeout     = optional(number, 600)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for hook in values(var.lifecycle_hooks) : can(jsondecode(hook.notification_metadata).pin) && can(jsondecode(hook.notification_metadata).pool)])
    error_message = "Each hook's notification_metadata is a JSON object with at least pin and pool, e.g. jsonencode({ pin = \"eni\", pool = \"licence\" })."
  }

  validation {
    condition     = alltrue([for hook in values(var.lifecycle_hooks) : length(hook.notification_metadata) <= 1023])
    error_message = "Auto Scaling keeps at most 1023 characters of notification_metadata."
  }

  validation {
    condition     = alltrue([for hook in values(var.lifecycle_hooks) : hook.heartbeat_timeout >= 30 && hook.heartbeat_timeout <= 7200])
    error_message = "heartbeat_timeout is 30 to 7200 seconds."
  }

  validation {
    condition     = alltrue([for hook in values(var.lifecycle_hooks) : contains(var.group_names, hook.group_name)])
    error_message = "Each hook's group_name must be one of group_names: the rule and the role serve those groups only."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of pinhook's metrics (PINHOOK_METRICS_NAMESPACE; template: MetricsNamespace); the alarms and the dashboard read it."
  type        = string
  default     = "pinhook"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9A-Za-z.\\-_/#:]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace is 1 to 255 of 0-9 A-Z a-z . - _ / # : and does not start with AWS/."
  }
}

variable "environment_variables" {
  description = "Further PINHOOK_ settings of the function (see the README's environment variables), e.g. { PINHOOK_SWEEP_MAX_CALLS = \"400\" }. PINHOOK_GROUPS and PINHOOK_METRICS_NAMESPACE come from group_names and metrics_namespace."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for name in keys(var.environment_variables) : can(regex("^PINHOOK_[A-Z_]+$", name)) && !contains(["PINHOOK_GROUPS", "PINHOOK_METRICS_NAMESPACE"], name)])
    error_message = "environment_variables holds PINHOOK_ settings only (pinhook refuses an unknown PINHOOK_ variable at start-up), and not PINHOOK_GROUPS or PINHOOK_METRICS_NAMESPACE."
  }
}

variable "alarm_topic_arn" {
  description = "Optional: an existing SNS topic the alarms notify (template: AlarmTopicArn)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", coalesce(var.alarm_topic_arn, "-")))
    error_message = "alarm_topic_arn is the ARN of an SNS topic."
  }
}

variable "create_alarm_topic" {
  description = "true creates an SNS topic for the alarms (template: CreateAlarmTopic); subscribe to it (e-mail, chat) yourself. With alarm_topic_arn too, both are notified."
  type        = bool
  default     = false
  nullable    = false
}

variable "drift_alarm_period" {
  description = "Seconds of one period of the drift alarm, which fires when the sweep found drift in each of three periods in a row (template: DriftAlarmPeriod). Default: the interval of a rate() sweep_schedule; required with a cron() schedule. A multiple of 60, at most 3600 (CloudWatch evaluates an alarm on a Metrics Insights query over its last three hours)."
  type        = number
  default     = null

  validation {
    condition     = var.drift_alarm_period == null || (coalesce(var.drift_alarm_period, 60) % 60 == 0 && coalesce(var.drift_alarm_period, 60) >= 60 && coalesce(var.drift_alarm_period, 60) <= 3600)
    error_message = "drift_alarm_period is a multiple of 60 from 60 to 3600 seconds."
  }

  validation {
    condition     = var.drift_alarm_period != null || !startswith(var.sweep_schedule, "cron(")
    error_message = "With a cron() sweep_schedule, set drift_alarm_period to the seconds between two sweeps."
  }
}

variable "create_dashboard" {
  description = "true creates a CloudWatch dashboard of pinhook's metrics, the function's invocations and errors, and the dead-letter queues (template: Dashboard)."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags for every resource the module creates that takes tags."
  type        = map(string)
  default     = {}
  nullable    = false
}
