output "role_arn" {
  description = "IRSA role ARN for Berth's service account annotation."
  value       = module.role.role_arn
}

output "config_secret_arn" {
  description = "Secrets Manager secret holding Berth's settings."
  value       = aws_secretsmanager_secret.config.arn
}

output "unit_user_permissions_boundary_arn" {
  description = "Permissions boundary every unit IAM user created by Berth must carry."
  value       = aws_iam_policy.unit_user_boundary.arn
}
