# Optional lifecycle hooks on existing groups, as template.yaml's LaunchHook and TerminateHook on
# HookGroupName. A hook applies to the instances launched after it exists; a group created in the
# same configuration declares its hooks as initial_lifecycle_hook blocks instead (see
# examples/single-instance-ha).

locals {
  hooks = merge([
    for key, hook in var.lifecycle_hooks : {
      "${key}/launch" = {
        group_name            = hook.group_name
        name                  = "pinhook-launch"
        transition            = "autoscaling:EC2_INSTANCE_LAUNCHING"
        notification_metadata = hook.notification_metadata
        heartbeat_timeout     = hook.heartbeat_timeout
        # An instance without its member is abandoned (and replaced) if pinhook never answers.
        default_result = "ABANDON"
      }
      "${key}/terminate" = {
        group_name            = hook.group_name
        name                  = "pinhook-terminate"
        transition            = "autoscaling:EC2_INSTANCE_TERMINATING"
        notification_metadata = hook.notification_metadata
        heartbeat_timeout     = hook.heartbeat_timeout
        # Termination is never held up for pinhook.
        default_result = "CONTINUE"
      }
    }
  ]...)
}

resource "aws_autoscaling_lifecycle_hook" "pinhook" {
  for_each = local.hooks

  name                   = each.value.name
  autoscaling_group_name = each.value.group_name
  lifecycle_transition   = each.value.transition
  notification_metadata  = each.value.notification_metadata
  heartbeat_timeout      = each.value.heartbeat_timeout
  default_result         = each.value.default_result

  notification_target_arn = var.notification_queue ? aws_sqs_queue.lifecycle[0].arn : null
  role_arn                = var.notification_queue ? aws_iam_role.lifecycle_notifications[0].arn : null

  # Auto Scaling tests the target with the role when the hook is put: the role's policy first.
  depends_on = [aws_iam_role_policy.lifecycle_notifications]
}
