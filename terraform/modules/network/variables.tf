variable "name" {
  type        = string
  description = "Name prefix of the network resources."
}

variable "cluster_name" {
  type        = string
  description = "EKS cluster name, written into the subnet discovery tags used by the load balancer controller."
}

variable "create_vpc" {
  type        = bool
  description = "Create a VPC (true) or pass through vpc_id and the subnet lists (false)."
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of a created VPC: public /24 and private /20 subnets are carved from it."
}

variable "availability_zone_count" {
  type        = number
  description = "Number of availability zones used by a created VPC."
}

variable "vpc_id" {
  type        = string
  description = "Existing VPC id when create_vpc is false."
  default     = null
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Existing private subnet ids when create_vpc is false."
  default     = []
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Existing public subnet ids when create_vpc is false."
  default     = []
}

variable "flow_log_retention_days" {
  type        = number
  description = "Retention in days of the VPC flow-log group."
  default     = 365
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
}
