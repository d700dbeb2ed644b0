# The root module planned in a company workspace, against the mocked AWS provider.
# tools/infra/check.sh runs this directory with TF_WORKSPACE=seaview: no input below names the
# company, so every "seaview" asserted here can only come from the workspace.

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

run "names_derive_from_the_workspace" {
  command = plan

  assert {
    condition     = output.company == "seaview" && terraform_data.workspace_guard.input == "seaview"
    error_message = "The company must be the workspace name (run with TF_WORKSPACE=seaview)."
  }

  assert {
    condition     = output.cluster_name == "seaview-shared" && endswith(output.kubeconfig_command, "--name seaview-shared")
    error_message = "The cluster must be named <company>-shared."
  }

  assert {
    condition = [
      module.irsa_vpc_cni.role_name,
      module.irsa_ebs_csi.role_name,
      module.irsa_lb_controller.role_name,
      module.irsa_cluster_autoscaler.role_name,
      ] == [
      "seaview-shared-vpc-cni",
      "seaview-shared-ebs-csi",
      "seaview-shared-aws-lb-controller",
      "seaview-shared-cluster-autoscaler",
    ]
    error_message = "Cluster service roles must be named after the company's cluster."
  }

  assert {
    condition     = local.tags["berth:company"] == "seaview" && local.tags["Workspace"] == "seaview" && local.tags["ManagedBy"] == "terraform"
    error_message = "The common tags must carry the company (the workspace)."
  }

  assert {
    condition = alltrue([
      for addon in [aws_eks_addon.vpc_cni, aws_eks_addon.kube_proxy, aws_eks_addon.coredns, aws_eks_addon.ebs_csi] :
      addon.cluster_name == "seaview-shared" && addon.tags["berth:company"] == "seaview"
    ])
    error_message = "Every add-on must belong to the company's cluster and carry its tags."
  }

  assert {
    condition     = jsondecode(aws_eks_addon.vpc_cni.configuration_values).enableNetworkPolicy == "true"
    error_message = "The VPC CNI must enforce NetworkPolicies."
  }

  assert {
    condition     = output.rancher_registration.enabled && output.rancher_registration.rancher_cluster_id == "c-m4x7q"
    error_message = "Rancher registration is on by default."
  }
}

# Cluster services run with policies that can only touch what is tagged for this cluster.
run "cluster_service_policies_are_scoped_to_the_cluster" {
  command = plan

  # No wildcard admin: no Allow of "*" or of a whole service ("iam:*"), whatever the resource.
  assert {
    condition = alltrue(flatten([
      for doc in [data.aws_iam_policy_document.lb_controller, data.aws_iam_policy_document.cluster_autoscaler] : [
        for s in doc.statement : s.effect == "Deny" || alltrue([for a in s.actions : a != "*" && !endswith(a, ":*")])
      ]
    ]))
    error_message = "A cluster service policy allows every action of a service."
  }

  # Every condition on a cluster-ownership tag names this company's cluster and no other.
  assert {
    condition = alltrue(flatten([
      for doc in [data.aws_iam_policy_document.lb_controller, data.aws_iam_policy_document.cluster_autoscaler] : [
        for s in doc.statement : [
          for c in s.condition :
          strcontains(c.variable, "elbv2.k8s.aws/cluster") ? toset(c.values) == toset(["seaview-shared"]) : (
            strcontains(c.variable, "k8s.io/cluster-autoscaler/") ? endswith(c.variable, "/k8s.io/cluster-autoscaler/seaview-shared") && toset(c.values) == toset(["owned"]) : true
          )
        ]
      ]
    ]))
    error_message = "A cluster-tag condition names another cluster than seaview-shared."
  }

  # The autoscaler may only scale node groups tagged as owned by this cluster.
  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.cluster_autoscaler.statement :
      alltrue([for a in s.actions : startswith(a, "autoscaling:Describe") || startswith(a, "ec2:Describe") || startswith(a, "ec2:Get") || startswith(a, "eks:Describe")])
      || anytrue([for c in s.condition : c.variable == "aws:ResourceTag/k8s.io/cluster-autoscaler/seaview-shared"])
    ])
    error_message = "The Cluster Autoscaler may change an Auto Scaling group that is not tagged for this cluster."
  }

  # The load balancer controller: every statement that may change something on "*" is
  # conditioned on this cluster's tag, except the reviewed statements of the controller's upstream
  # policy that AWS cannot scope (creation calls, listener/rule and WAF/Shield calls).
  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.lb_controller.statement :
      !contains(s.resources, "*")
      || length(s.condition) > 0
      || alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:(Describe|Get|List)", a))])
      || contains(["CertificatesWafShield", "CreateSecurityGroupForThisCluster", "ListenersAndRules", "ListenerSettings"], s.sid)
    ])
    error_message = "The load balancer controller got a new unconditioned write on \"*\"; scope it to the cluster tag."
  }
}

# ---- Variable validations --------------------------------------------------------------------

run "api_endpoint_open_to_the_internet_is_refused" {
  command = plan

  variables {
    cluster_endpoint_public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.cluster_endpoint_public_access_cidrs]
}

run "rancher_url_must_be_an_https_host" {
  command = plan

  variables {
    rancher_url = "http://rancher.example.com/"
  }

  expect_failures = [var.rancher_url]
}

run "truncated_rancher_token_is_refused" {
  command = plan

  variables {
    rancher_registration_token = "0123456789"
  }

  expect_failures = [var.rancher_registration_token]
}

run "account_ids_are_twelve_digits" {
  command = plan

  variables {
    allowed_account_ids = ["1234"]
  }

  expect_failures = [var.allowed_account_ids]
}
