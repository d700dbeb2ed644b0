variable "name" {
  type        = string
  description = "Name prefix of the database resources."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the database."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the database (two zones at least)."
}

variable "client_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to connect on 5432 (the EKS cluster security group)."
}

variable "instance_class" {
  type        = string
  description = "RDS instance class."
}

variable "allocated_storage_gib" {
  type        = number
  description = "Initial storage in GiB; autoscaling may grow it to five times this."
}

variable "multi_az" {
  type        = bool
  description = "Run a standby in a second zone."
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse deletion of the instance."
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
}
