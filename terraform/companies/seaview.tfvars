# Example company file: SeaView. Used as `terraform plan -var-file=companies/seaview.tfvars`
# in the `seaview` workspace. Secrets (Rancher URL and token) are never in this file: pass them
# as TF_VAR_rancher_url / TF_VAR_rancher_registration_token (see README.md).
aws_region          = "eu-central-1"
allowed_account_ids = ["123456789012"]

extra_tags = {
  CostCenter = "platform"
  Owner      = "platform-team@seaview.example.com"
}

# Network: a new VPC over three zones.
create_vpc              = true
vpc_cidr                = "10.60.0.0/16"
availability_zone_count = 3

# Operators' office/VPN range and the central Rancher's egress address may reach the API.
cluster_endpoint_public_access_cidrs = ["203.0.113.0/24", "198.51.100.10/32"]
cluster_admin_principal_arns         = ["arn:aws:iam::123456789012:role/platform-admins"]

kubernetes_version = "1.33"
node_instance_type = "m6i.xlarge"
node_min_size      = 3
node_max_size      = 12
node_desired_size  = 3

# Imported cluster id from Rancher (Cluster Management → Import Existing → Generic).
rancher_cluster_id = "c-m4x7q"

create_database = true
