variable "role_name" {
  type        = string
  description = "Name of the IAM role."
}

variable "description" {
  type        = string
  description = "What the role is for, shown in the IAM console."
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the cluster's IAM OIDC provider."
}

variable "oidc_issuer" {
  type        = string
  description = "Issuer host/path of the cluster's OIDC provider, without https://."
}

variable "namespace" {
  type        = string
  description = "Namespace of the service account allowed to assume the role."
}

variable "service_account" {
  type        = string
  description = "Name of the service account allowed to assume the role."
}

variable "inline_policies" {
  type        = map(string)
  description = "Inline IAM policies of the role: policy name (known at plan) => policy document JSON."
  default     = {}
}

variable "managed_policy_arns" {
  type        = list(string)
  description = "AWS-managed policy ARNs to attach."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to the role."
}
