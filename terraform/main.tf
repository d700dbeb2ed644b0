data "aws_partition" "current" {}

module "network" {
  source = "./modules/network"

  name                    = local.name
  cluster_name            = local.cluster_name
  create_vpc              = var.create_vpc
  vpc_cidr                = var.vpc_cidr
  availability_zone_count = var.availability_zone_count
  vpc_id                  = var.vpc_id
  private_subnet_ids      = var.private_subnet_ids
  public_subnet_ids       = var.public_subnet_ids
  tags                    = local.tags
}

module "eks" {
  source = "./modules/eks"

  cluster_name                 = local.cluster_name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.network.private_subnet_ids
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  admin_principal_arns         = var.cluster_admin_principal_arns
  log_retention_days           = var.cluster_log_retention_days
  tags                         = local.tags
}

module "nodes" {
  source = "./modules/nodes"

  company                       = local.company
  cluster_name                  = module.eks.cluster_name
  kubernetes_version            = var.kubernetes_version
  cluster_endpoint              = module.eks.cluster_endpoint
  cluster_certificate_authority = module.eks.cluster_certificate_authority
  cluster_service_cidr          = module.eks.cluster_service_cidr
  cluster_security_group_id     = module.eks.cluster_security_group_id
  subnet_ids                    = module.network.private_subnet_ids
  instance_type                 = var.node_instance_type
  min_size                      = var.node_min_size
  max_size                      = var.node_max_size
  desired_size                  = var.node_desired_size
  root_volume_gib               = var.node_root_volume_gib
  kubectl_url                   = var.node_kubectl_url
  rancher_registration_enabled  = var.rancher_registration_enabled
  rancher_url                   = var.rancher_url
  rancher_registration_token    = var.rancher_registration_token
  rancher_cluster_id            = var.rancher_cluster_id
  tags                          = local.tags

  # The VPC CNI must be configured (with its IRSA role) before nodes can become Ready.
  depends_on = [aws_eks_addon.vpc_cni, aws_eks_addon.kube_proxy]
}

# ---- IRSA roles for cluster services --------------------------------------------------------

module "irsa_vpc_cni" {
  source = "./modules/irsa"

  role_name           = "${local.cluster_name}-vpc-cni"
  description         = "Amazon VPC CNI (aws-node) of ${local.cluster_name}."
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer         = module.eks.oidc_issuer
  namespace           = "kube-system"
  service_account     = "aws-node"
  managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"]
  tags                = local.tags
}

module "irsa_ebs_csi" {
  source = "./modules/irsa"

  role_name           = "${local.cluster_name}-ebs-csi"
  description         = "EBS CSI driver of ${local.cluster_name} (persistent volumes of unit workloads)."
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer         = module.eks.oidc_issuer
  namespace           = "kube-system"
  service_account     = "ebs-csi-controller-sa"
  managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
  tags                = local.tags
}

module "irsa_lb_controller" {
  source = "./modules/irsa"

  role_name         = "${local.cluster_name}-aws-lb-controller"
  description       = "AWS Load Balancer Controller of ${local.cluster_name}; limited to load balancers tagged for this cluster."
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = "kube-system"
  service_account   = "aws-load-balancer-controller"
  inline_policies   = { aws-load-balancer-controller = data.aws_iam_policy_document.lb_controller.json }
  tags              = local.tags
}

module "berth_iam" {
  source = "./modules/berth_iam"

  company             = local.company
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer         = module.eks.oidc_issuer
  namespace           = var.berth_namespace
  service_account     = var.berth_service_account
  unit_s3_bucket_arns = var.unit_s3_bucket_arns
  tags                = local.tags
}

# ---- EKS add-ons (versions: EKS's default for the cluster version) --------------------------

resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = module.eks.cluster_name
  addon_name                  = "vpc-cni"
  service_account_role_arn    = module.irsa_vpc_cni.role_arn
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  # Turns on the network policy agent so NetworkPolicies (Berth's, the units') are enforced.
  configuration_values = jsonencode({ enableNetworkPolicy = "true" })

  tags = local.tags
}

resource "aws_eks_addon" "kube_proxy" {
  cluster_name                = module.eks.cluster_name
  addon_name                  = "kube-proxy"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  tags = local.tags
}

# CoreDNS and the EBS CSI controller are Deployments: they need nodes to schedule on.
resource "aws_eks_addon" "coredns" {
  cluster_name                = module.eks.cluster_name
  addon_name                  = "coredns"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  tags = local.tags

  depends_on = [module.nodes]
}

resource "aws_eks_addon" "ebs_csi" {
  cluster_name                = module.eks.cluster_name
  addon_name                  = "aws-ebs-csi-driver"
  service_account_role_arn    = module.irsa_ebs_csi.role_arn
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"

  tags = local.tags

  depends_on = [module.nodes]
}

# ---- Optional PostgreSQL for Berth -----------------------------------------------------------

module "database" {
  source = "./modules/rds"
  count  = var.create_database ? 1 : 0

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class            = var.database_instance_class
  allocated_storage_gib     = var.database_allocated_storage_gib
  multi_az                  = var.database_multi_az
  deletion_protection       = var.database_deletion_protection
  tags                      = local.tags
}
