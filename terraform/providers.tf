provider "aws" {
  region = var.aws_region

  # Guard against applying one company's workspace with another account's credentials.
  allowed_account_ids = var.allowed_account_ids

  # Tagging decision: every taggable resource sets `tags = local.tags` (or the resource's own
  # tag blocks) explicitly, and the HCL test enforces it. We do not rely on `default_tags` because
  # the modules must stay correct when called from another root with other provider settings, and
  # because ASG instances and launch-template volumes need explicit tag blocks anyway.
}
