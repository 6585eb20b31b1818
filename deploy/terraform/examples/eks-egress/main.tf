# A static egress IP for pods: a dedicated EKS managed node group in public subnets whose nodes
# each get an Elastic IP of the pool on their primary interface. The Amazon VPC CNI source-NATs
# pods' traffic to the node's primary private IP, and the internet gateway translates that to
# the associated public IP, so every pod scheduled on these nodes leaves from one of the pool's
# addresses: the partner allow-lists all of them.

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

  # pinhook records its leases and idle addresses as tags; without this, every apply would
  # remove them from the pool's addresses.
  ignore_tags {
    keys = ["pinhook:holder", "pinhook:idle-since"]
  }
}

# The pool: one address per node the group may run. No instance or network_interface argument:
# pinhook associates each address with a node, and an association declared here would be taken
# back on the next apply.
resource "aws_eip" "egress" {
  #checkov:skip=CKV2_AWS_19:pinhook associates these addresses with the node group's instances as they launch; an association declared here would be undone on every apply.
  count  = var.max_nodes
  domain = "vpc"

  tags = {
    Name           = "${var.pool}-${count.index}"
    "pinhook:pool" = var.pool
  }
}

resource "aws_eks_node_group" "egress" {
  cluster_name    = var.cluster_name
  node_group_name = "egress"
  node_role_arn   = var.node_role_arn
  # Public subnets: a node in a private subnet leaves through its NAT gateway's address instead.
  subnet_ids = var.public_subnet_ids

  scaling_config {
    min_size     = 1
    desired_size = 2
    # Never more nodes than addresses: a launch that finds the pool exhausted is abandoned.
    max_size = var.max_nodes
  }

  labels = {
    egress = "static-ip"
  }

  # Only pods that tolerate this (and select the label) run here.
  taint {
    key    = "egress"
    value  = "static-ip"
    effect = "NO_SCHEDULE"
  }
}

locals {
  # The managed node group's Auto Scaling group, known once EKS has created it.
  egress_group = aws_eks_node_group.egress.resources[0].autoscaling_groups[0].name
}

module "pinhook" {
  source = "../.."

  group_names = [local.egress_group]
  zip_path    = var.zip_path

  # EKS creates the group, so its first nodes launch before these hooks exist: the sweep pins
  # them (instances in service holding nothing), within one sweep_schedule of the apply.
  lifecycle_hooks = {
    egress = {
      group_name            = local.egress_group
      notification_metadata = jsonencode({ pin = "eip", pool = var.pool, interface = 0 })
    }
  }

  create_alarm_topic = true
}

output "egress_ips" {
  description = "Every address of the pool: the partner allow-lists all of them, as a replaced node may take any."
  value       = aws_eip.egress[*].public_ip
}

output "node_group_asg" {
  description = "The node group's Auto Scaling group, which pinhook serves."
  value       = local.egress_group
}
