terraform {
  # 1.6 brings the `terraform test` framework and stable `check`/`import` blocks used by operators.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    # Exact pins: a provider upgrade is a reviewed change, never a side effect of `init`.
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }

  # State lives in S3 with one key per workspace (`env:/<workspace>/berth/terraform.tfstate`).
  # Bucket, table and region are given at `terraform init -backend-config=...` time, see README.md.
  backend "s3" {
    key     = "berth/terraform.tfstate"
    encrypt = true
  }
}
