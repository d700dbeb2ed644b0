# ---------------------------------------------------------------------------------------------
# Account and naming
# ---------------------------------------------------------------------------------------------
variable "aws_region" {
  type        = string
  description = "AWS region for the company's cluster, e.g. eu-central-1."
}

variable "allowed_account_ids" {
  type        = list(string)
  description = "AWS account ids this workspace may be applied to; a plan with other credentials fails."

  validation {
    condition     = length(var.allowed_account_ids) > 0 && alltrue([for id in var.allowed_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "Give at least one 12-digit AWS account id."
  }
}

variable "extra_tags" {
  type        = map(string)
  description = "Extra tags (cost centre, owner, ...) merged into the tags every resource gets."
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network: use an existing VPC (create_vpc = false) or create one
# ---------------------------------------------------------------------------------------------
variable "create_vpc" {
  type        = bool
  description = "Create a new VPC with public and private subnets (true) or use vpc_id and the subnet lists (false)."
  default     = true
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC when create_vpc is true."
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "availability_zone_count" {
  type        = number
  description = "Number of availability zones to spread subnets over when create_vpc is true."
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 6
    error_message = "EKS needs subnets in at least two availability zones (at most 6 here)."
  }
}

variable "vpc_id" {
  type        = string
  description = "Existing VPC id, used only when create_vpc is false."
  default     = null
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Existing private subnet ids (nodes, control plane ENIs, RDS) when create_vpc is false; at least two AZs."
  default     = []
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Existing public subnet ids (internet-facing load balancers) when create_vpc is false."
  default     = []
}

# ---------------------------------------------------------------------------------------------
# EKS
# ---------------------------------------------------------------------------------------------
variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes minor version, e.g. 1.33. Also selects the EKS-optimised AMI and kubectl used at node boot."
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version is a minor version such as 1.33."
  }
}

variable "cluster_endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the public Kubernetes API endpoint (operators, CI, Rancher). Empty list = private endpoint only."

  validation {
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "Give explicit CIDR blocks; 0.0.0.0/0 is not allowed for the API endpoint."
  }
}

variable "cluster_admin_principal_arns" {
  type        = list(string)
  description = "IAM role/user ARNs given cluster-admin through EKS access entries (the operators running terraform and kubectl)."
  default     = []
}

variable "cluster_log_retention_days" {
  type        = number
  description = "Retention in days of the EKS control-plane log group."
  default     = 365
}

# ---------------------------------------------------------------------------------------------
# Worker nodes (Auto Scaling group)
# ---------------------------------------------------------------------------------------------
variable "node_instance_type" {
  type        = string
  description = "EC2 instance type of the worker nodes."
  default     = "m6i.xlarge"
}

variable "node_min_size" {
  type        = number
  description = "Minimum number of worker nodes."
  default     = 3
}

variable "node_max_size" {
  type        = number
  description = "Maximum number of worker nodes."
  default     = 12
}

variable "node_desired_size" {
  type        = number
  description = "Desired number of worker nodes at creation; later changes by the autoscaler are ignored."
  default     = 3
}

variable "node_root_volume_gib" {
  type        = number
  description = "Size of each node's encrypted gp3 root volume in GiB."
  default     = 100
}

variable "node_kubectl_url" {
  type        = string
  description = "Amazon EKS kubectl build fetched at node boot to apply the Rancher import manifest; its .sha256 beside it is checked. Keep it at the cluster's minor version."
  default     = "https://s3.us-west-2.amazonaws.com/amazon-eks/1.33.0/2025-05-01/bin/linux/amd64/kubectl"
}

# ---------------------------------------------------------------------------------------------
# Central Rancher
# ---------------------------------------------------------------------------------------------
variable "rancher_url" {
  type        = string
  description = "HTTPS URL of the central Rancher server, e.g. https://rancher.example.com (no trailing slash)."
  sensitive   = true

  validation {
    condition     = can(regex("^https://[^/]+$", var.rancher_url))
    error_message = "rancher_url must be https://host with no path or trailing slash."
  }
}

variable "rancher_registration_token" {
  type        = string
  description = "Registration token of the imported cluster in Rancher (the <token> in /v3/import/<token>_<cluster-id>.yaml)."
  sensitive   = true

  validation {
    condition     = length(var.rancher_registration_token) >= 32
    error_message = "The Rancher registration token looks truncated."
  }
}

variable "rancher_cluster_id" {
  type        = string
  description = "Rancher's id of the imported cluster (c-xxxxx), shown when the cluster is created in Rancher."

  validation {
    condition     = can(regex("^c-[a-z0-9]+$", var.rancher_cluster_id))
    error_message = "rancher_cluster_id looks like c-abc12."
  }
}

variable "rancher_registration_enabled" {
  type        = bool
  description = "Let nodes apply the Rancher import manifest at boot (through a dedicated registrar role). Set false to register the cluster by hand."
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Berth itself
# ---------------------------------------------------------------------------------------------
variable "berth_namespace" {
  type        = string
  description = "Kubernetes namespace Berth runs in (IRSA trust is bound to it)."
  default     = "berth"
}

variable "berth_service_account" {
  type        = string
  description = "Kubernetes service account name of Berth's provisioning worker, the one the IRSA role trusts (deploy/: the web pods use another, without the role)."
  default     = "berth"
}

variable "unit_s3_bucket_arns" {
  type        = list(string)
  description = "S3 ARNs the per-unit IAM users created by Berth may ever be granted (enforced by a permissions boundary). Empty = arn:aws:s3:::berth-<company>-* and its objects."
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Optional PostgreSQL for Berth
# ---------------------------------------------------------------------------------------------
variable "create_database" {
  type        = bool
  description = "Create an RDS PostgreSQL instance for Berth (false = bring your own DATABASE_URL)."
  default     = false
}

variable "database_instance_class" {
  type        = string
  description = "RDS instance class for Berth's database."
  default     = "db.t4g.medium"
}

variable "database_allocated_storage_gib" {
  type        = number
  description = "Initial storage of Berth's database in GiB (autoscaling up to 5x)."
  default     = 50
}

variable "database_multi_az" {
  type        = bool
  description = "Run Berth's database Multi-AZ."
  default     = true
}

variable "database_deletion_protection" {
  type        = bool
  description = "Protect Berth's database from deletion (turn off only to tear a workspace down)."
  default     = true
}
