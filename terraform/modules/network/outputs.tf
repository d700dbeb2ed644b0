output "vpc_id" {
  description = "Id of the VPC the cluster runs in."
  value       = var.create_vpc ? one(aws_vpc.this[*].id) : var.vpc_id
}

output "vpc_cidr_block" {
  description = "Primary CIDR block of that VPC."
  value       = var.create_vpc ? one(aws_vpc.this[*].cidr_block) : one(data.aws_vpc.existing[*].cidr_block)
}

output "private_subnet_ids" {
  description = "Private subnet ids (nodes, control-plane ENIs, databases)."
  value       = var.create_vpc ? aws_subnet.private[*].id : var.private_subnet_ids
}

output "public_subnet_ids" {
  description = "Public subnet ids (internet-facing load balancers)."
  value       = var.create_vpc ? aws_subnet.public[*].id : var.public_subnet_ids
}
