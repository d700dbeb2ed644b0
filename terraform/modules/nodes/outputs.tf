output "node_role_arn" {
  description = "IAM role of the worker nodes."
  value       = aws_iam_role.node.arn
}

output "autoscaling_group_name" {
  description = "Name of the worker Auto Scaling group."
  value       = aws_autoscaling_group.node.name
}

output "rancher_registration_secret_arn" {
  description = "Secrets Manager secret holding the Rancher URL and token read by nodes (null when disabled)."
  value       = var.rancher_registration_enabled ? aws_secretsmanager_secret.rancher[0].arn : null
}

output "rancher_registrar_role_arn" {
  description = "Role that applies the Rancher import manifest from a node (null when disabled)."
  value       = var.rancher_registration_enabled ? aws_iam_role.registrar[0].arn : null
}
