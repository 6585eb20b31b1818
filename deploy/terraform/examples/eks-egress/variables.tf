variable "region" {
  description = "The AWS Region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "The existing EKS cluster."
  type        = string
}

variable "node_role_arn" {
  description = "The IAM role of the node group's nodes (AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy, AmazonEC2ContainerRegistryReadOnly)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (a route to an internet gateway) for the egress nodes."
  type        = list(string)
}

variable "max_nodes" {
  description = "The node group's maximum size, and so the pool's size."
  type        = number
  default     = 3
}

variable "pool" {
  description = "The pool's name: its addresses carry the tag pinhook:pool with this value."
  type        = string
  default     = "partner-egress"
}

variable "zip_path" {
  description = "pinhook's zip, as make release builds it."
  type        = string
  default     = "../../../../target/lambda/pinhook/bootstrap.zip"
}
