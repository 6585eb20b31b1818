variable "region" {
  description = "The AWS Region."
  type        = string
  default     = "us-east-1"
}

variable "subnet_ids" {
  description = "Public subnets in two AZs (or more) for the group's one instance."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give subnets in at least two AZs: the replacement launches in another one."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instance's primary interface."
  type        = list(string)
}

variable "image_id" {
  description = "The instance's AMI."
  type        = string
}

variable "instance_type" {
  description = "The instance's type."
  type        = string
  default     = "t3.micro"
}

variable "pool" {
  description = "The pool's name: the address carries the tag pinhook:pool with this value."
  type        = string
  default     = "ha-ip"
}

variable "zip_path" {
  description = "pinhook's zip, as make release builds it."
  type        = string
  default     = "../../../../target/lambda/pinhook/bootstrap.zip"
}
