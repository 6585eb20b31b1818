variable "region" {
  description = "The AWS Region of the group."
  type        = string
  default     = "us-east-1"
}

variable "group_name" {
  description = "The existing Auto Scaling group whose instances need a licence's MAC."
  type        = string
  default     = "licensed-app"
}

variable "subnet_ids" {
  description = "One subnet in each AZ the group uses; the pool's ENIs are created in them."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the pool's ENIs."
  type        = list(string)
}

variable "licences_per_az" {
  description = "ENIs per AZ: the instances the group may place there, plus one spare."
  type        = number
  default     = 2
}

variable "pool" {
  description = "The pool's name: its members carry the tag pinhook:pool with this value."
  type        = string
  default     = "licence"
}

variable "zip_path" {
  description = "pinhook's zip, as make release builds it."
  type        = string
  default     = "../../../../target/lambda/pinhook/bootstrap.zip"
}
