locals {
  # One workspace per company: `terraform workspace new seaview`. Everything is named from it.
  company = terraform.workspace

  name         = "berth-${local.company}"
  cluster_name = "${local.company}-shared"

  tags = merge(var.extra_tags, {
    "berth:company"   = local.company
    "berth:component" = "platform"
    "ManagedBy"       = "terraform"
    "Workspace"       = terraform.workspace
  })
}

# Refuse to plan in the `default` workspace or with a name that cannot be used in AWS names.
resource "terraform_data" "workspace_guard" {
  input = local.company

  lifecycle {
    precondition {
      condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", terraform.workspace)) && terraform.workspace != "default"
      error_message = "Select a company workspace first (terraform workspace select <company>); names are lowercase letters, digits and dashes, 3-24 characters, and never 'default'."
    }
  }
}
