# The worker nodes (modules/nodes) planned on their own, against the mocked AWS provider: the root
# calls the module with depends_on, which leaves its data sources, and so the user-data, unknown
# until apply; here they are known at plan.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

# Mocked resources get random ARNs and ids only at apply; these are what AWS would return, so the
# plan (and the user-data that names them) is complete.
override_resource {
  target          = aws_secretsmanager_secret.rancher
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:berth-system/seaview/rancher-registration-AbC123" }
}

override_resource {
  target          = aws_iam_role.node
  override_during = plan
  values          = { arn = "arn:aws:iam::123456789012:role/seaview-shared-node" }
}

override_resource {
  target          = aws_iam_role.registrar
  override_during = plan
  values          = { arn = "arn:aws:iam::123456789012:role/seaview-shared-rancher-registrar" }
}

override_resource {
  target          = aws_launch_template.node
  override_during = plan
  values          = { id = "lt-0123456789abcdef0", latest_version = 1 }
}

variables {
  company                       = "seaview"
  cluster_name                  = "seaview-shared"
  kubernetes_version            = "1.33"
  cluster_endpoint              = "https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-central-1.eks.amazonaws.com"
  cluster_certificate_authority = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
  cluster_service_cidr          = "172.20.0.0/16"
  cluster_security_group_id     = "sg-0123456789abcdef0"
  subnet_ids                    = ["subnet-0a", "subnet-0b", "subnet-0c"]
  instance_type                 = "m6i.xlarge"
  min_size                      = 3
  max_size                      = 12
  desired_size                  = 3
  root_volume_gib               = 100
  kubectl_url                   = "https://s3.us-west-2.amazonaws.com/amazon-eks/1.33.0/2025-05-01/bin/linux/amd64/kubectl"
  rancher_registration_enabled  = true
  rancher_url                   = "https://rancher.example.com"
  rancher_registration_token    = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ab"
  rancher_cluster_id            = "c-m4x7q"
  tags                          = { "berth:company" = "seaview", ManagedBy = "terraform" }
}

run "user_data_joins_eks_and_registers_with_rancher" {
  command = plan

  module {
    source = "./modules/nodes"
  }

  assert {
    condition     = aws_autoscaling_group.node.launch_template[0].id == aws_launch_template.node.id && aws_autoscaling_group.node.launch_template[0].version == tostring(aws_launch_template.node.latest_version)
    error_message = "The Auto Scaling group must launch the latest version of the node launch template."
  }

  assert {
    condition = alltrue([
      for line in ["kind: NodeConfig", "name: seaview-shared", "apiServerEndpoint: ${var.cluster_endpoint}", "cidr: 172.20.0.0/16"] :
      strcontains(base64decode(aws_launch_template.node.user_data), line)
    ])
    error_message = "The user-data must join the node to the company's cluster with nodeadm."
  }

  assert {
    condition = alltrue([
      for line in [
        "SECRET_ARN='${aws_secretsmanager_secret.rancher[0].arn}'",
        "REGISTRAR_ROLE_ARN='${aws_iam_role.registrar[0].arn}'",
        "CLUSTER='seaview-shared'",
        "REGION='eu-central-1'",
        "\"$rancher_url/v3/import/$${token}_$${cluster_id}.yaml\"",
        "kubectl apply -f \"$STATE/rancher-import.yaml\"",
        "ExecStart=/usr/local/sbin/berth-rancher-register",
        "systemctl enable --now --no-block berth-rancher-register.service",
      ] : strcontains(base64decode(aws_launch_template.node.user_data), line)
    ])
    error_message = "The user-data must install and start the unit that applies Rancher's import manifest."
  }

  # The user-data is readable with ec2:DescribeInstanceAttribute: the token and URL stay out of it.
  assert {
    condition     = !strcontains(base64decode(aws_launch_template.node.user_data), nonsensitive(var.rancher_registration_token)) && !strcontains(base64decode(aws_launch_template.node.user_data), nonsensitive(var.rancher_url))
    error_message = "The Rancher token or URL is written into the user-data."
  }

  assert {
    condition = (
      aws_secretsmanager_secret.rancher[0].name == "berth-system/seaview/rancher-registration"
      && nonsensitive(jsondecode(aws_secretsmanager_secret_version.rancher[0].secret_string)) == { url = "https://rancher.example.com", token = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ab", cluster_id = "c-m4x7q" }
    )
    error_message = "The registration secret must be the company's and hold URL, token and cluster id."
  }

  assert {
    condition = (
      aws_launch_template.node.metadata_options[0].http_tokens == "required"
      && aws_launch_template.node.metadata_options[0].http_put_response_hop_limit == 1
    )
    error_message = "Pods must not reach the node role: IMDSv2 only, hop limit 1."
  }

  assert {
    condition = alltrue([
      for k, v in { "k8s.io/cluster-autoscaler/seaview-shared" = "owned", "kubernetes.io/cluster/seaview-shared" = "owned", "berth:company" = "seaview" } :
      anytrue([for t in aws_autoscaling_group.node.tag : t.key == k && t.value == v && t.propagate_at_launch])
    ])
    error_message = "The Auto Scaling group must carry the company tags and this cluster's autoscaler tags."
  }
}

run "node_policies_are_scoped_to_the_company" {
  command = plan

  module {
    source = "./modules/nodes"
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.node_read_rancher[0].statement : s.resources] == [
      toset([aws_secretsmanager_secret.rancher[0].arn]),
      toset([aws_iam_role.registrar[0].arn]),
      toset(["arn:aws:eks:eu-central-1:123456789012:cluster/seaview-shared"]),
    ]
    error_message = "Nodes may read only their company's registration secret, become only its registrar, describe only its cluster."
  }

  assert {
    condition     = data.aws_iam_policy_document.registrar_describe[0].statement[0].resources == toset(["arn:aws:eks:eu-central-1:123456789012:cluster/seaview-shared"])
    error_message = "The registrar may describe only the company's cluster."
  }

  assert {
    condition     = aws_iam_role.node.name == "seaview-shared-node" && aws_iam_role.registrar[0].name == "seaview-shared-rancher-registrar"
    error_message = "Node and registrar roles must be named after the company's cluster."
  }

  # The registrar is assumable by the node role only.
  assert {
    condition     = [for p in data.aws_iam_policy_document.registrar_assume[0].statement[0].principals : p.identifiers] == [toset([aws_iam_role.node.arn])]
    error_message = "The registrar role must trust the node role and nobody else."
  }

  # No wildcard admin: only the key policy's account-root statement may say kms:*; nothing says "*".
  assert {
    condition = alltrue(flatten([
      for doc in concat(
        data.aws_iam_policy_document.node_read_rancher[0].statement,
        data.aws_iam_policy_document.registrar_describe[0].statement,
        data.aws_iam_policy_document.rancher_kms[0].statement,
        data.aws_iam_policy_document.node_assume.statement,
        data.aws_iam_policy_document.registrar_assume[0].statement,
        ) : [
        for a in doc.actions : a != "*" && (!endswith(a, ":*") || doc.sid == "AccountDelegatesToIam")
      ]
    ]))
    error_message = "A node policy allows every action of a service."
  }

  assert {
    condition = (
      toset(keys(aws_iam_role_policy_attachment.node)) == toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"])
      && alltrue([for k, a in aws_iam_role_policy_attachment.node : a.policy_arn == "arn:aws:iam::aws:policy/${k}"])
    )
    error_message = "The node role gets exactly the three node policies of AWS, no admin policy."
  }
}

run "without_rancher_registration_nodes_only_join_eks" {
  command = plan

  module {
    source = "./modules/nodes"
  }

  variables {
    rancher_registration_enabled = false
  }

  assert {
    condition     = !strcontains(base64decode(aws_launch_template.node.user_data), "rancher") && strcontains(base64decode(aws_launch_template.node.user_data), "kind: NodeConfig")
    error_message = "With registration off the user-data must only join the cluster."
  }

  assert {
    condition     = length(aws_secretsmanager_secret.rancher) == 0 && length(aws_iam_role.registrar) == 0 && length(aws_eks_access_entry.registrar) == 0
    error_message = "With registration off there is no secret and no cluster-admin registrar."
  }
}
