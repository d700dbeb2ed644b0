variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the control plane."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the control-plane ENIs (at least two zones)."
}

variable "endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed on the public API endpoint; empty disables the public endpoint."
}

variable "admin_principal_arns" {
  type        = list(string)
  description = "IAM principals given cluster-admin through access entries."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the control-plane log group in days."
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
}
