# Self-managed worker nodes: an Auto Scaling group from a launch template whose user-data
# (1) joins the EKS cluster with nodeadm and (2) registers the cluster with the central Rancher
# by applying Rancher's import manifest once (the first node to boot does it; later nodes see
# the cattle-cluster-agent and stop). The Rancher URL and token are never in user-data: they are
# kept in a KMS-encrypted Secrets Manager secret that only the node role can read.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
}

# ---- Node IAM role -------------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json

  tags = var.tags
}

# No AmazonEKS_CNI_Policy here: the VPC CNI runs with its own IRSA role (root module).
# Keyed by policy name, not ARN: the root calls this module with depends_on, which defers its
# data sources (the partition) to apply, and for_each keys must be known at plan.
resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

resource "aws_iam_instance_profile" "node" {
  name = "${var.cluster_name}-node"
  role = aws_iam_role.node.name

  tags = var.tags
}

resource "aws_eks_access_entry" "node" {
  cluster_name  = var.cluster_name
  principal_arn = aws_iam_role.node.arn
  type          = "EC2_LINUX"

  tags = var.tags
}

# ---- Rancher registration secret -----------------------------------------------------------

resource "aws_kms_key" "rancher" {
  count = var.rancher_registration_enabled ? 1 : 0

  description         = "${var.cluster_name} Rancher registration secret"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.rancher_kms[0].json

  tags = var.tags
}

data "aws_iam_policy_document" "rancher_kms" {
  count = var.rancher_registration_enabled ? 1 : 0

  # checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  # checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  # checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means "this key"; the account root statement is AWS's required default.
  statement {
    sid       = "AccountDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "NodesDecryptThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.node.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret" "rancher" {
  count = var.rancher_registration_enabled ? 1 : 0

  # checkov:skip=CKV2_AWS_57:The registration token is issued by Rancher; rotate it in Rancher and re-apply with the new value (see terraform/README.md).
  name                    = "berth-system/${var.company}/rancher-registration"
  description             = "Central Rancher URL and import token for cluster ${var.cluster_name}; read by nodes at boot."
  kms_key_id              = aws_kms_key.rancher[0].arn
  recovery_window_in_days = 7

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "rancher" {
  count = var.rancher_registration_enabled ? 1 : 0

  secret_id = aws_secretsmanager_secret.rancher[0].id
  secret_string = jsonencode({
    url        = var.rancher_url
    token      = var.rancher_registration_token
    cluster_id = var.rancher_cluster_id
  })
}

data "aws_iam_policy_document" "node_read_rancher" {
  count = var.rancher_registration_enabled ? 1 : 0

  statement {
    sid       = "ReadRancherRegistration"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.rancher[0].arn]
  }

  statement {
    sid       = "BecomeRegistrar"
    actions   = ["sts:AssumeRole"]
    resources = [aws_iam_role.registrar[0].arn]
  }

  statement {
    sid       = "DescribeOwnCluster"
    actions   = ["eks:DescribeCluster"]
    resources = ["arn:${local.partition}:eks:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"]
  }
}

resource "aws_iam_role_policy" "node_read_rancher" {
  count = var.rancher_registration_enabled ? 1 : 0

  name   = "rancher-registration"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node_read_rancher[0].json
}

# The registrar is the Kubernetes identity that applies Rancher's import manifest. The manifest
# creates a cluster-admin binding for the Rancher agent, so whoever applies it must be
# cluster-admin; keeping that in a separate role (assumable only by the node role, and only used
# by the boot script) keeps the node role itself at EC2_LINUX node permissions.
data "aws_iam_policy_document" "registrar_assume" {
  count = var.rancher_registration_enabled ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.node.arn]
    }
  }
}

resource "aws_iam_role" "registrar" {
  count = var.rancher_registration_enabled ? 1 : 0

  name                 = "${var.cluster_name}-rancher-registrar"
  description          = "Applies the Rancher import manifest from a booting node; no AWS permissions."
  assume_role_policy   = data.aws_iam_policy_document.registrar_assume[0].json
  max_session_duration = 3600

  tags = var.tags
}

data "aws_iam_policy_document" "registrar_describe" {
  count = var.rancher_registration_enabled ? 1 : 0

  statement {
    sid       = "DescribeOwnCluster"
    actions   = ["eks:DescribeCluster"]
    resources = ["arn:${local.partition}:eks:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"]
  }
}

resource "aws_iam_role_policy" "registrar" {
  count = var.rancher_registration_enabled ? 1 : 0

  name   = "describe-cluster"
  role   = aws_iam_role.registrar[0].id
  policy = data.aws_iam_policy_document.registrar_describe[0].json
}

resource "aws_eks_access_entry" "registrar" {
  count = var.rancher_registration_enabled ? 1 : 0

  cluster_name  = var.cluster_name
  principal_arn = aws_iam_role.registrar[0].arn
  type          = "STANDARD"

  tags = var.tags
}

resource "aws_eks_access_policy_association" "registrar" {
  count = var.rancher_registration_enabled ? 1 : 0

  cluster_name  = var.cluster_name
  principal_arn = aws_iam_role.registrar[0].arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }

  depends_on = [aws_eks_access_entry.registrar]
}

# ---- Launch template and Auto Scaling group ------------------------------------------------

data "aws_ssm_parameter" "ami" {
  name = "/aws/service/eks/optimized-ami/${var.kubernetes_version}/amazon-linux-2023/x86_64/standard/recommended/image_id"
}

resource "aws_launch_template" "node" {
  name_prefix            = "${var.cluster_name}-node-"
  description            = "EKS AL2023 worker for ${var.cluster_name}, registers the cluster with Rancher"
  image_id               = data.aws_ssm_parameter.ami.value
  instance_type          = var.instance_type
  ebs_optimized          = true
  update_default_version = true
  vpc_security_group_ids = [var.cluster_security_group_id]

  user_data = base64encode(templatefile("${path.module}/user-data.tftpl", {
    cluster_name          = var.cluster_name
    cluster_endpoint      = var.cluster_endpoint
    cluster_ca            = var.cluster_certificate_authority
    service_cidr          = var.cluster_service_cidr
    region                = data.aws_region.current.name
    register_with_rancher = var.rancher_registration_enabled
    rancher_secret_arn    = var.rancher_registration_enabled ? aws_secretsmanager_secret.rancher[0].arn : ""
    registrar_role_arn    = var.rancher_registration_enabled ? aws_iam_role.registrar[0].arn : ""
    kubectl_url           = var.kubectl_url
  }))

  iam_instance_profile {
    arn = aws_iam_instance_profile.node.arn
  }

  # IMDSv2 only, and a hop limit of 1 so ordinary pods cannot reach the node role's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-node" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-node" })
  }

  tag_specifications {
    resource_type = "network-interface"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-node" })
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_autoscaling_group" "node" {
  name_prefix         = "${var.cluster_name}-node-"
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  desired_capacity    = var.desired_size
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  # A new launch template version (AMI, user-data) rolls the nodes, keeping 2/3 serving.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 66
    }
  }

  dynamic "tag" {
    for_each = merge(var.tags, {
      Name                                            = "${var.cluster_name}-node"
      "kubernetes.io/cluster/${var.cluster_name}"     = "owned"
      "k8s.io/cluster-autoscaler/enabled"             = "true"
      "k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned"
    })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # The cluster autoscaler owns the running count after creation.
    ignore_changes = [desired_capacity]
  }

  depends_on = [
    aws_eks_access_entry.node,
    aws_iam_role_policy_attachment.node,
  ]
}
