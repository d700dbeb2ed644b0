# Cluster Autoscaler (kube-system/cluster-autoscaler): scales the node ASG, which carries the
# k8s.io/cluster-autoscaler/* discovery tags. Writes are limited to ASGs tagged for this cluster.
data "aws_iam_policy_document" "cluster_autoscaler" {
  # checkov:skip=CKV_AWS_356:Auto Scaling and EC2 Describe* calls have no resource-level permissions; the two writes are tag-conditioned.
  statement {
    sid = "Describe"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
      "eks:DescribeNodegroup",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ScaleOwnNodeGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.cluster_name}"
      values   = ["owned"]
    }
  }
}

module "irsa_cluster_autoscaler" {
  source = "./modules/irsa"

  role_name         = "${local.cluster_name}-cluster-autoscaler"
  description       = "Cluster Autoscaler of ${local.cluster_name}; scales only this cluster's node groups."
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = "kube-system"
  service_account   = "cluster-autoscaler"
  inline_policies   = { cluster-autoscaler = data.aws_iam_policy_document.cluster_autoscaler.json }
  tags              = local.tags
}
