# An ENI pool for a licensed group: licensed software checks the server's MAC address, so every
# instance of an existing Auto Scaling group gets one of these ENIs (fixed MAC and private IP) at
# device index 1 when it launches, and gives it back when it terminates. One ENI per licence, in
# every AZ the group uses (an ENI belongs to a subnet, so to an AZ), plus a spare per AZ for an
# instance refresh that launches before it terminates.

terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.32"
    }
  }
}

provider "aws" {
  region = var.region

  # pinhook records its leases as tags (pinhook:holder on the ENI); without this, every apply
  # would remove them from the pool's ENIs.
  ignore_tags {
    keys = ["pinhook:holder"]
  }
}

# The pool. No attachment block: pinhook attaches each ENI to an instance, and an attachment
# declared here would be taken back (or fought over) on the next apply.
resource "aws_network_interface" "licence" {
  for_each = {
    for pair in setproduct(var.subnet_ids, range(var.licences_per_az)) :
    "${pair[0]}/${pair[1]}" => pair[0]
  }

  subnet_id       = each.value
  security_groups = var.security_group_ids
  description     = "pinhook pool ${var.pool}: a licence's fixed MAC"

  tags = {
    Name           = "${var.pool}-${each.key}"
    "pinhook:pool" = var.pool
  }
}

module "pinhook" {
  source = "../.."

  group_names = [var.group_name]
  # Only pinhook's own hooks invoke the function; other tools' hooks on the group do not.
  hook_names = ["pinhook-launch", "pinhook-terminate"]
  zip_path   = var.zip_path

  # The group exists already: the module adds pinhook's hooks to it. Instances already running
  # hold nothing until the sweep pins them (a launch before the hooks existed is a missed launch).
  lifecycle_hooks = {
    licensed = {
      group_name = var.group_name
      # An instance without its licence is useless: the launch hook's default result is
      # ABANDON, and so is on_failure.
      notification_metadata = jsonencode({ pin = "eni", pool = var.pool, device_index = 1, on_failure = "abandon" })
    }
  }

  create_alarm_topic = true
}

output "pool" {
  description = "The pool's ENIs: id and MAC address, for the licence server."
  value       = { for key, eni in aws_network_interface.licence : eni.id => eni.mac_address }
}

output "alarm_topic_arn" {
  description = "Subscribe to this topic for pinhook's alarms."
  value       = module.pinhook.alarm_topic_arn
}
