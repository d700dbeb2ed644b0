# The control plane, network, database and IRSA modules planned on their own, against the mocked
# AWS provider: their roles and key policies stay within the company's cluster, and nothing
# allows "*" or a whole service (kms:* only in the account-root statement of key policies, which is
# AWS's default key policy).

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

run "eks_control_plane" {
  command = plan

  module {
    source = "./modules/eks"
  }

  variables {
    cluster_name                 = "seaview-shared"
    kubernetes_version           = "1.33"
    subnet_ids                   = ["subnet-0a", "subnet-0b", "subnet-0c"]
    endpoint_public_access_cidrs = ["203.0.113.0/24"]
    admin_principal_arns         = ["arn:aws:iam::123456789012:role/platform-admins"]
    log_retention_days           = 365
    tags                         = { "berth:company" = "seaview", ManagedBy = "terraform" }
  }

  override_resource {
    target          = aws_iam_role.cluster
    override_during = plan
    values          = { arn = "arn:aws:iam::123456789012:role/seaview-shared-eks-cluster" }
  }

  assert {
    condition = (
      aws_eks_cluster.this.name == "seaview-shared"
      && aws_eks_cluster.this.access_config[0].authentication_mode == "API"
      && !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions
      && aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.0/24"])
      && aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"])
    )
    error_message = "The control plane must be the company's, with access entries only, a limited endpoint and encrypted Secrets."
  }

  # IRSA without the tls provider: the OIDC provider trusts the cluster's issuer for STS.
  assert {
    condition = (
      aws_iam_openid_connect_provider.this.url == "https://oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
      && aws_iam_openid_connect_provider.this.client_id_list == toset(["sts.amazonaws.com"])
    )
    error_message = "The IAM OIDC provider must be the cluster's issuer with audience sts.amazonaws.com."
  }

  assert {
    condition = (
      toset(keys(aws_eks_access_policy_association.admin)) == toset(["arn:aws:iam::123456789012:role/platform-admins"])
      && aws_iam_role.cluster.name == "seaview-shared-eks-cluster"
    )
    error_message = "Only the listed operators get cluster-admin."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.secrets_kms.statement :
      s.sid == "AccountDelegatesToIam" || [for p in s.principals : p.identifiers] == [toset(["arn:aws:iam::123456789012:role/seaview-shared-eks-cluster"])]
    ])
    error_message = "Only the cluster role may use the Secrets key besides the account."
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(
        data.aws_iam_policy_document.cluster_assume.statement,
        data.aws_iam_policy_document.secrets_kms.statement,
        data.aws_iam_policy_document.logs_kms.statement,
      ) : [for a in s.actions : a != "*" && (!endswith(a, ":*") || s.sid == "AccountDelegatesToIam")]
    ]))
    error_message = "An EKS policy allows every action of a service."
  }
}

run "network_flow_logs" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    name                    = "berth-seaview"
    cluster_name            = "seaview-shared"
    create_vpc              = true
    vpc_cidr                = "10.60.0.0/16"
    availability_zone_count = 3
    vpc_id                  = null
    private_subnet_ids      = []
    public_subnet_ids       = []
    tags                    = { "berth:company" = "seaview", ManagedBy = "terraform" }
  }

  override_resource {
    target          = aws_cloudwatch_log_group.flow_logs
    override_during = plan
    values          = { arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/vpc/berth-seaview/flow-logs" }
  }

  assert {
    condition = (
      length(aws_subnet.private) == 3 && length(aws_nat_gateway.this) == 3
      && alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/cluster/seaview-shared"] == "shared" && s.tags["kubernetes.io/role/internal-elb"] == "1"])
    )
    error_message = "Private subnets in three zones, each with a NAT gateway, tagged for the company's cluster."
  }

  assert {
    condition = (
      aws_iam_role.flow_logs[0].name == "berth-seaview-vpc-flow-logs"
      && data.aws_iam_policy_document.flow_logs_write[0].statement[0].resources == toset(["arn:aws:logs:eu-central-1:123456789012:log-group:/aws/vpc/berth-seaview/flow-logs:*"])
    )
    error_message = "Flow logs may write only to the company's flow-log group."
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(
        data.aws_iam_policy_document.flow_logs_assume.statement,
        data.aws_iam_policy_document.flow_logs_write[0].statement,
        data.aws_iam_policy_document.flow_logs_kms[0].statement,
      ) : [for a in s.actions : a != "*" && (!endswith(a, ":*") || s.sid == "AccountDelegatesToIam")]
    ]))
    error_message = "A network policy allows every action of a service."
  }
}

run "database" {
  command = plan

  module {
    source = "./modules/rds"
  }

  variables {
    name                      = "berth-seaview"
    vpc_id                    = "vpc-0123456789abcdef0"
    subnet_ids                = ["subnet-0a", "subnet-0b", "subnet-0c"]
    client_security_group_ids = ["sg-0123456789abcdef0"]
    instance_class            = "db.t4g.medium"
    allocated_storage_gib     = 50
    multi_az                  = true
    deletion_protection       = true
    tags                      = { "berth:company" = "seaview", ManagedBy = "terraform" }
  }

  assert {
    condition = (
      aws_db_instance.this.identifier == "berth-seaview-db"
      && !aws_db_instance.this.publicly_accessible
      && aws_db_instance.this.storage_encrypted
      && aws_db_instance.this.manage_master_user_password
      && aws_iam_role.monitoring.name == "berth-seaview-rds-monitoring"
    )
    error_message = "The database must be the company's, private, encrypted, with its password kept by RDS."
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(data.aws_iam_policy_document.db_kms.statement, data.aws_iam_policy_document.monitoring_assume.statement) :
      [for a in s.actions : a != "*" && (!endswith(a, ":*") || s.sid == "AccountDelegatesToIam")]
    ]))
    error_message = "A database policy allows every action of a service."
  }
}

run "irsa_role_trusts_one_service_account" {
  command = plan

  module {
    source = "./modules/irsa"
  }

  variables {
    role_name           = "seaview-shared-cluster-autoscaler"
    description         = "Cluster Autoscaler of seaview-shared."
    oidc_provider_arn   = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    oidc_issuer         = "oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    namespace           = "kube-system"
    service_account     = "cluster-autoscaler"
    inline_policies     = { cluster-autoscaler = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
    managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
    tags                = { "berth:company" = "seaview", ManagedBy = "terraform" }
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.assume.statement :
      s.actions == toset(["sts:AssumeRoleWithWebIdentity"])
      && [for p in s.principals : p.identifiers] == [toset([var.oidc_provider_arn])]
      && { for c in s.condition : c.variable => toset(c.values) } == {
        "oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF:sub" = toset(["system:serviceaccount:kube-system:cluster-autoscaler"])
        "oidc.eks.eu-central-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF:aud" = toset(["sts.amazonaws.com"])
      }
    ])
    error_message = "An IRSA role must be assumable by its one service account of this cluster only."
  }

  assert {
    condition = (
      toset(keys(aws_iam_role_policy.inline)) == toset(["cluster-autoscaler"])
      && toset(keys(aws_iam_role_policy_attachment.managed)) == toset(["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"])
    )
    error_message = "The role gets exactly the inline and managed policies it is given."
  }
}
