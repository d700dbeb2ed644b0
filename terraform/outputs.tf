output "company" {
  description = "Company this workspace builds (the workspace name)."
  value       = local.company
}

output "cluster_name" {
  description = "Name of the company's EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "HTTPS endpoint of the cluster's Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA bundle of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.aws_region} --name ${module.eks.cluster_name}"
}

output "rancher_registration" {
  description = "How the cluster registers with Rancher: the imported cluster id, the secret nodes read, the registrar role, and the unit that does it on each node."
  value = {
    enabled             = var.rancher_registration_enabled
    rancher_cluster_id  = var.rancher_cluster_id
    secret_arn          = module.nodes.rancher_registration_secret_arn
    registrar_role_arn  = module.nodes.rancher_registrar_role_arn
    node_systemd_unit   = "berth-rancher-register.service"
    autoscaling_group   = module.nodes.autoscaling_group_name
    check_agent_command = "kubectl -n cattle-system rollout status deployment/cattle-cluster-agent"
  }
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IRSA)."
  value       = module.eks.oidc_provider_arn
}

output "aws_load_balancer_controller_role_arn" {
  description = "IRSA role for the kube-system/aws-load-balancer-controller service account."
  value       = module.irsa_lb_controller.role_arn
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role for the kube-system/cluster-autoscaler service account (auto-discovers the ASG by its k8s.io/cluster-autoscaler tags)."
  value       = module.irsa_cluster_autoscaler.role_arn
}

output "berth_role_arn" {
  description = "IRSA role for Berth's worker service account (eks.amazonaws.com/role-arn annotation)."
  value       = module.berth_iam.role_arn
}

output "berth_config_secret_arn" {
  description = "Secrets Manager secret for Berth's settings (value set by the operator)."
  value       = module.berth_iam.config_secret_arn
}

output "berth_unit_user_permissions_boundary_arn" {
  description = "Permissions boundary Berth must attach to every unit IAM user it creates."
  value       = module.berth_iam.unit_user_permissions_boundary_arn
}

output "database_endpoint" {
  description = "host:port of Berth's RDS PostgreSQL (null when create_database is false)."
  value       = var.create_database ? module.database[0].endpoint : null
}

output "database_master_secret_arn" {
  description = "RDS-managed Secrets Manager secret with the master user's password (null without a database)."
  value       = var.create_database ? module.database[0].master_user_secret_arn : null
}
