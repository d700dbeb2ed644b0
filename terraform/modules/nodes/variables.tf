variable "company" {
  type        = string
  description = "Company (workspace) name, used in secret names."
}

variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster the nodes join."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version; selects the EKS-optimised AL2023 AMI."
}

variable "cluster_endpoint" {
  type        = string
  description = "Kubernetes API endpoint written into the nodeadm NodeConfig."
}

variable "cluster_certificate_authority" {
  type        = string
  description = "Base64 CA bundle of the cluster written into the nodeadm NodeConfig."
}

variable "cluster_service_cidr" {
  type        = string
  description = "Service CIDR of the cluster written into the nodeadm NodeConfig."
}

variable "cluster_security_group_id" {
  type        = string
  description = "EKS cluster security group the nodes join."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets the Auto Scaling group launches nodes into."
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the nodes."
}

variable "min_size" {
  type        = number
  description = "Minimum number of nodes."
}

variable "max_size" {
  type        = number
  description = "Maximum number of nodes."
}

variable "desired_size" {
  type        = number
  description = "Desired number of nodes at creation."
}

variable "root_volume_gib" {
  type        = number
  description = "Root volume size of each node in GiB."
}

variable "kubectl_url" {
  type        = string
  description = "URL of the Amazon EKS kubectl build used at boot; URL.sha256 must exist beside it."
}

variable "rancher_registration_enabled" {
  type        = bool
  description = "Whether nodes register the cluster with Rancher at boot."
}

variable "rancher_url" {
  type        = string
  description = "HTTPS URL of the central Rancher server."
  sensitive   = true
}

variable "rancher_registration_token" {
  type        = string
  description = "Rancher import token of this cluster."
  sensitive   = true
}

variable "rancher_cluster_id" {
  type        = string
  description = "Rancher's id of the imported cluster (c-xxxxx)."
}

variable "tags" {
  type        = map(string)
  description = "Tags applied to every resource, the instances and their volumes."
}
