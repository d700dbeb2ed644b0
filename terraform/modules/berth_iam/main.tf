# Berth's own AWS permissions, least privilege: everything it may touch is scoped to the
# company by name — CloudFormation stacks `berth-<company>--*`, Secrets Manager secrets
# `berth/<company>/*`, IAM users under the path `/berth/<company>/`, the units' data buckets
# `berth-<company>-*` (named after their stacks) — plus read access to its
# own config secret `berth-system/<company>/config`. IAM users Berth creates must carry the
# permissions boundary defined here, so an inline policy Berth writes can never grant more than
# S3 access to the unit buckets (no privilege escalation through created users).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name

  stack_arn       = "arn:${local.partition}:cloudformation:${local.region}:${local.account}:stack/berth-${var.company}--*/*"
  unit_secret_arn = "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:berth/${var.company}/*"
  unit_user_arn   = "arn:${local.partition}:iam::${local.account}:user/berth/${var.company}/*"
  # CloudFormation names a unit's bucket <stack name>-databucket-<random>, lower-cased.
  unit_bucket_arn = "arn:${local.partition}:s3:::berth-${var.company}-*"
  bucket_arns     = length(var.unit_s3_bucket_arns) > 0 ? var.unit_s3_bucket_arns : ["arn:${local.partition}:s3:::berth-${var.company}-*", "arn:${local.partition}:s3:::berth-${var.company}-*/*"]
  boundary_name   = "berth-${var.company}-unit-user-boundary"
  boundary_arn    = "arn:${local.partition}:iam::${local.account}:policy/berth/${var.company}/${local.boundary_name}"
}

# ---- Berth's config secret (value set by the operator, never by Terraform) ------------------

resource "aws_kms_key" "config" {
  description         = "Berth ${var.company} configuration secret"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.config_kms.json

  tags = var.tags
}

data "aws_iam_policy_document" "config_kms" {
  # checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  # checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  # checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  statement {
    sid       = "AccountDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
}

resource "aws_secretsmanager_secret" "config" {
  # checkov:skip=CKV2_AWS_57:Holds Berth's settings (OIDC client secret, Rancher token) issued by other systems; rotated by the operator, see docs/deploy.md.
  name                    = "berth-system/${var.company}/config"
  description             = "Berth settings for ${var.company} (BERTH_* environment values as JSON); set by the operator."
  kms_key_id              = aws_kms_key.config.arn
  recovery_window_in_days = 7

  tags = var.tags
}

# ---- Permissions boundary every unit IAM user must carry ------------------------------------

data "aws_iam_policy_document" "unit_user_boundary" {
  statement {
    sid = "UnitBucketsOnly"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:ListBucket",
      "s3:GetBucketLocation",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = local.bucket_arns
  }
}

resource "aws_iam_policy" "unit_user_boundary" {
  name        = local.boundary_name
  path        = "/berth/${var.company}/"
  description = "Upper bound of what any IAM user Berth creates for ${var.company} can do."
  policy      = data.aws_iam_policy_document.unit_user_boundary.json

  tags = var.tags
}

# ---- Berth's role policy --------------------------------------------------------------------

data "aws_iam_policy_document" "berth" {
  # checkov:skip=CKV_AWS_356:Only the read-only DescribeStacks needs "*": Berth finds a unit's stack by paging DescribeStacks without a stack name and filtering by tag, which IAM authorises against "*". Every write is scoped to berth-<company>--* stacks.
  statement {
    sid = "UnitStacks"
    actions = [
      "cloudformation:CreateStack",
      "cloudformation:UpdateStack",
      "cloudformation:DeleteStack",
      "cloudformation:DescribeStacks",
      "cloudformation:DescribeStackEvents",
      "cloudformation:DescribeStackResource",
      "cloudformation:DescribeStackResources",
      "cloudformation:ListStackResources",
      "cloudformation:GetTemplate",
      "cloudformation:GetTemplateSummary",
      "cloudformation:CreateChangeSet",
      "cloudformation:DescribeChangeSet",
      "cloudformation:ExecuteChangeSet",
      "cloudformation:DeleteChangeSet",
      "cloudformation:ListChangeSets",
      "cloudformation:TagResource",
      "cloudformation:UntagResource",
    ]
    # Change-set actions are authorised against the stack they target, so this covers them.
    resources = [local.stack_arn]
  }

  # Finding a unit's stack by tag pages through DescribeStacks, and CreateChangeSet validates the
  # template: both are read-only calls that IAM only grants on "*".
  statement {
    sid       = "ListAndValidate"
    actions   = ["cloudformation:DescribeStacks", "cloudformation:ListStacks", "cloudformation:ValidateTemplate"]
    resources = ["*"]
  }

  # The units' secrets, and the company's registry password secret berth/<company>/registry-password
  # that Berth writes from its settings: CloudFormation, calling with Berth's credentials (no
  # service role), reads it with GetSecretValue for the units' stacks' dynamic reference.
  statement {
    sid = "UnitSecrets"
    actions = [
      "secretsmanager:CreateSecret",
      "secretsmanager:UpdateSecret",
      "secretsmanager:DeleteSecret",
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:TagResource",
      "secretsmanager:UntagResource",
    ]
    resources = [local.unit_secret_arn]
  }

  # GenerateSecretString in a stack calls GetRandomPassword, and a decommission finds the unit's
  # secrets by tag with ListSecrets (to schedule their deletion and prove it): neither has a
  # resource to scope to.
  statement {
    sid       = "GeneratePasswordsAndListSecrets"
    actions   = ["secretsmanager:GetRandomPassword", "secretsmanager:ListSecrets"]
    resources = ["*"]
  }

  statement {
    sid       = "OwnConfig"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.config.arn]
  }

  statement {
    sid       = "DecryptOwnConfig"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.config.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  # The unit stack may create the unit's private data bucket (templates/cloudformation/
  # business-unit.yaml). Buckets are named after the stack, so the prefix scopes them.
  statement {
    sid = "UnitBuckets"
    actions = [
      "s3:CreateBucket",
      "s3:DeleteBucket",
      "s3:ListBucket",
      "s3:GetBucketLocation",
      "s3:PutEncryptionConfiguration",
      "s3:GetEncryptionConfiguration",
      "s3:PutBucketVersioning",
      "s3:GetBucketVersioning",
      "s3:PutBucketPublicAccessBlock",
      "s3:GetBucketPublicAccessBlock",
      "s3:PutBucketOwnershipControls",
      "s3:GetBucketOwnershipControls",
      "s3:PutBucketTagging",
      "s3:GetBucketTagging",
      "s3:PutBucketPolicy",
      "s3:GetBucketPolicy",
      "s3:DeleteBucketPolicy",
    ]
    resources = [local.unit_bucket_arn]
  }

  # Unit users may only be created with the boundary above attached.
  statement {
    sid       = "CreateBoundedUnitUsers"
    actions   = ["iam:CreateUser", "iam:PutUserPermissionsBoundary"]
    resources = [local.unit_user_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }
  }

  statement {
    sid = "ManageUnitUsers"
    actions = [
      "iam:GetUser",
      "iam:DeleteUser",
      "iam:TagUser",
      "iam:UntagUser",
      "iam:ListUserTags",
      "iam:PutUserPolicy",
      "iam:GetUserPolicy",
      "iam:DeleteUserPolicy",
      "iam:ListUserPolicies",
      "iam:ListAttachedUserPolicies",
      "iam:ListGroupsForUser",
      "iam:CreateAccessKey",
      "iam:DeleteAccessKey",
      "iam:UpdateAccessKey",
      "iam:ListAccessKeys",
    ]
    resources = [local.unit_user_arn]
  }

  # Nobody, Berth included, may take the boundary off a unit user.
  statement {
    sid       = "KeepBoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteUserPermissionsBoundary"]
    resources = [local.unit_user_arn]
  }
}

module "role" {
  source = "../irsa"

  role_name         = "berth-${var.company}-app"
  description       = "Berth portal for ${var.company}: unit stacks, secrets and IAM users only."
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.namespace
  service_account   = var.service_account
  inline_policies   = { berth = data.aws_iam_policy_document.berth.json }
  tags              = var.tags
}
