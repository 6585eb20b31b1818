# Single-instance high availability: an Auto Scaling group of exactly one instance over two AZs
# and one Elastic IP that follows the instance. When an AZ fails, Auto Scaling launches the
# replacement in the other AZ; pinhook takes the address over from the instance that is leaving
# (takeover) before the replacement goes in service.

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

  # pinhook records its lease and idle addresses as tags; without this, every apply would
  # remove them from the address.
  ignore_tags {
    keys = ["pinhook:holder", "pinhook:idle-since"]
  }
}

locals {
  group = "ha-app"
  # pinhook's configuration of the group's hooks.
  metadata = jsonencode({ pin = "eip", pool = var.pool, takeover = true })
}

# The pool: one address. No instance argument: pinhook associates it, and an association declared
# here would be taken back on the next apply.
resource "aws_eip" "ha" {
  #checkov:skip=CKV2_AWS_19:pinhook associates the address with the group's instance as it launches; an association declared here would be undone on every apply.
  domain = "vpc"

  tags = {
    Name           = var.pool
    "pinhook:pool" = var.pool
  }
}

# The group is created here with pinhook's hooks in it (initial_lifecycle_hook), so its very
# first instance waits for pinhook: hooks added to a group after it exists
# (aws_autoscaling_lifecycle_hook, the module's lifecycle_hooks) apply only to later launches.
resource "aws_autoscaling_group" "ha" {
  name                = local.group
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = var.subnet_ids
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.ha.id
    version = aws_launch_template.ha.latest_version
  }

  initial_lifecycle_hook {
    name                  = "pinhook-launch"
    lifecycle_transition  = "autoscaling:EC2_INSTANCE_LAUNCHING"
    heartbeat_timeout     = 600
    default_result        = "ABANDON"
    notification_metadata = local.metadata
  }

  initial_lifecycle_hook {
    name                  = "pinhook-terminate"
    lifecycle_transition  = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout     = 600
    default_result        = "CONTINUE"
    notification_metadata = local.metadata
  }

  tag {
    key                 = "Name"
    value               = local.group
    propagate_at_launch = true
  }

  # pinhook's rule and role first: the first instance's launch is then delivered and can be
  # completed, instead of waiting out its hook.
  depends_on = [module.pinhook]
}

resource "aws_launch_template" "ha" {
  name_prefix   = "${local.group}-"
  image_id      = var.image_id
  instance_type = var.instance_type

  network_interfaces {
    device_index = 0
    # The pool's address replaces the public IP AWS would give the primary interface.
    associate_public_ip_address = false
    security_groups             = var.security_group_ids
  }

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
}

module "pinhook" {
  source = "../.."

  # The group does not exist yet when the module is applied; its name is fixed above.
  group_names = [local.group]
  zip_path    = var.zip_path

  create_alarm_topic = true
}

output "public_ip" {
  description = "The address that follows the group's instance."
  value       = aws_eip.ha.public_ip
}
