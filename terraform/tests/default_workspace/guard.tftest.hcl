# One workspace per company: a plan in the `default` workspace must be refused.
# tools/infra/check.sh runs this directory on its own, in the default workspace
# (terraform test -test-directory=tests/default_workspace); the tests in tests/ run in the company
# workspace `seaview`. Together they show the names follow the workspace, whatever it is.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  aws_region                           = "eu-central-1"
  allowed_account_ids                  = ["123456789012"]
  cluster_endpoint_public_access_cidrs = ["203.0.113.0/24"]
  rancher_url                          = "https://rancher.example.com"
  rancher_registration_token           = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ab"
  rancher_cluster_id                   = "c-m4x7q"
}

run "default_workspace_is_refused" {
  command = plan

  expect_failures = [terraform_data.workspace_guard]

  # The guard fires on the workspace, not on a company name fixed somewhere in the code.
  assert {
    condition     = output.company == "default" && output.cluster_name == "default-shared"
    error_message = "Outside a company workspace the names must still come from the workspace (got ${output.company})."
  }
}
