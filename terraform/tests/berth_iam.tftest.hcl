# Berth's own permissions (modules/berth_iam) planned on their own, against the mocked AWS
# provider: everything Berth may change belongs to its company.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

# What AWS would return for the module's own secret and key (mocks get random ARNs only at apply).
override_resource {
  target          = aws_secretsmanager_secret.config
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:berth-system/seaview/config-AbC123" }
}

override_resource {
  target          = aws_kms_key.config
  override_during = plan
  values          = { arn = "arn:aws:kms:eu-central-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0" }
}

variables {
  company           = "seaview"
  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
  oidc_issuer       = "oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
  namespace         = "berth"
  service_account   = "berth"
  tags              = { "berth:company" = "seaview", ManagedBy = "terraform" }
}

run "berth_policy_is_scoped_to_the_company" {
  command = plan

  module {
    source = "./modules/berth_iam"
  }

  assert {
    condition     = length(data.aws_iam_policy_document.berth.statement) >= 8
    error_message = "Berth's policy document has suspiciously few statements."
  }

  # Every resource of every Allow statement is the company's: stacks berth-seaview-*, secrets
  # berth/seaview/*, users under /berth/seaview/, buckets berth-seaview-*, or this module's own
  # config secret and key. "*" only for the read-only calls IAM cannot scope.
  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.berth.statement : s.effect == "Deny" || alltrue([
        for r in s.resources :
        r == "*" ? length(setsubtract(s.actions, [
          "cloudformation:DescribeStacks",
          "cloudformation:ListStacks",
          "cloudformation:ValidateTemplate",
          "secretsmanager:GetRandomPassword",
          "secretsmanager:ListSecrets",
          ])) == 0 : (
          can(regex("^arn:aws:(cloudformation|secretsmanager):eu-central-1:123456789012:(stack/berth-seaview--|secret:berth/seaview/)", r))
          || can(regex("^arn:aws:iam::123456789012:user/berth/seaview/", r))
          || startswith(r, "arn:aws:s3:::berth-seaview-")
          || contains([aws_secretsmanager_secret.config.arn, aws_kms_key.config.arn], r)
        )
      ])
    ])
    error_message = "Berth's policy reaches beyond the company's stacks, secrets, users and buckets."
  }

  # Unit users can only be created with the company's boundary, and nobody may take it off.
  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.berth.statement :
      s.sid == "CreateBoundedUnitUsers" && anytrue([
        for c in s.condition :
        c.variable == "iam:PermissionsBoundary" && toset(c.values) == toset(["arn:aws:iam::123456789012:policy/berth/seaview/berth-seaview-unit-user-boundary"])
      ])
    ])
    error_message = "Unit users must be created with the company's permissions boundary."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.berth.statement :
      s.effect == "Deny" && contains(s.actions, "iam:DeleteUserPermissionsBoundary")
    ])
    error_message = "The boundary of unit users must be undeletable."
  }

  assert {
    condition = (
      aws_iam_policy.unit_user_boundary.name == "berth-seaview-unit-user-boundary"
      && aws_iam_policy.unit_user_boundary.path == "/berth/seaview/"
      && alltrue(flatten([for s in data.aws_iam_policy_document.unit_user_boundary.statement : [for r in s.resources : startswith(r, "arn:aws:s3:::berth-seaview-")]]))
    )
    error_message = "The unit-user boundary must allow only the company's buckets."
  }

  # The company's registry password secret: Berth writes it from its settings, and
  # CloudFormation, calling with Berth's credentials, reads it for the units' stacks'
  # {{resolve:secretsmanager:...}} reference.
  assert {
    condition = alltrue([
      for a in ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:TagResource"] :
      anytrue([
        for s in data.aws_iam_policy_document.berth.statement :
        s.effect != "Deny" && contains(s.actions, a) && anytrue([
          for r in s.resources : can(regex("^${replace(r, "*", ".*")}$", "arn:aws:secretsmanager:eu-central-1:123456789012:secret:berth/seaview/registry-password-AbC123"))
        ])
      ])
    ])
    error_message = "Berth's policy does not let it keep the company's registry password secret, nor CloudFormation read it for the units' stacks."
  }

  assert {
    condition     = aws_secretsmanager_secret.config.name == "berth-system/seaview/config" && module.role.role_name == "berth-seaview-app"
    error_message = "Berth's secret and role must be named after the company."
  }

  # No wildcard admin: nothing allows "*" or a whole service; kms:* only in the key policy's
  # account-root statement (AWS's default key policy).
  assert {
    condition = alltrue(flatten([
      for s in concat(
        data.aws_iam_policy_document.berth.statement,
        data.aws_iam_policy_document.unit_user_boundary.statement,
        data.aws_iam_policy_document.config_kms.statement,
        ) : [
        for a in s.actions : a != "*" && (!endswith(a, ":*") || s.sid == "AccountDelegatesToIam")
      ]
    ]))
    error_message = "A Berth policy allows every action of a service."
  }
}

# The same module for another company touches nothing of the first.
run "another_company_gets_its_own_scope" {
  command = plan

  module {
    source = "./modules/berth_iam"
  }

  variables {
    company = "harbour"
  }

  override_resource {
    target          = aws_secretsmanager_secret.config
    override_during = plan
    values          = { arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:berth-system/harbour/config-XyZ789" }
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(data.aws_iam_policy_document.berth.statement, data.aws_iam_policy_document.unit_user_boundary.statement) : [
        for r in s.resources : !strcontains(r, "seaview")
      ]
    ])) && module.role.role_name == "berth-harbour-app" && aws_iam_policy.unit_user_boundary.path == "/berth/harbour/"
    error_message = "Berth's policy for harbour names seaview's resources."
  }
}
