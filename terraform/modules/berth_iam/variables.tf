variable "company" {
  type        = string
  description = "Company (workspace) name that scopes every permission."
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the cluster's IAM OIDC provider."
}

variable "oidc_issuer" {
  type        = string
  description = "Issuer of the cluster's service-account tokens, without https://."
}

variable "namespace" {
  type        = string
  description = "Namespace Berth runs in."
}

variable "service_account" {
  type        = string
  description = "Service account Berth runs as."
}

variable "unit_s3_bucket_arns" {
  type        = list(string)
  description = "S3 ARNs unit IAM users may be granted; empty = berth-<company>-* buckets and their objects."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource."
}
