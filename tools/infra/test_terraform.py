"""Tests of the Terraform policy checks (terraform_checks.py, which need no terraform binary;
tools/infra/check.sh runs them before terraform's own fmt, validate and test, see
terraform/README.md): the real tree must pass every check, and each check has a negative test on
a bad snippet, so none of them can pass vacuously.
Run: .local/venv-infra/bin/python -m pytest tools/infra/test_terraform.py
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from terraform_checks import (
    TERRAFORM,
    labels,
    load_module,
    all_modules,
    _as_list,
    check_terraform_tests,
    check_tree,
)


# ---------------------------------------------------------------------------------------------
# Tests on the real tree
# ---------------------------------------------------------------------------------------------

def test_real_tree_has_root_and_modules():
    modules = all_modules(TERRAFORM)
    names = {m.path.name for m in modules}
    assert {"terraform", "network", "eks", "nodes", "irsa", "berth_iam", "rds"} <= names
    resources = sum(len(labels(b)) for m in modules for _, b in m.blocks("resource"))
    assert resources > 40, "the parser found suspiciously few resources"


def test_real_tree_passes_every_policy():
    problems = check_tree(TERRAFORM)
    assert problems == [], "\n".join(problems)


def test_real_tree_policies_are_covered_by_terraform_tests():
    assert list((TERRAFORM / "tests").glob("*.tftest.hcl")), "terraform/tests has no test files"
    problems = check_terraform_tests(TERRAFORM)
    assert problems == [], "\n".join(problems)


def test_rancher_inputs_are_sensitive_without_defaults():
    root = load_module(TERRAFORM)
    variables = {n: b for _, blk in root.blocks("variable") for n, b in labels(blk)}
    for name in ("rancher_url", "rancher_registration_token"):
        assert variables[name].get("sensitive") is True
        assert "default" not in variables[name]


def test_berth_role_is_scoped_to_the_company():
    """Every Allow statement of Berth's policy either names company-scoped ARNs or is one of the
    few read-only/unscopable calls we accept on "*"."""
    berth = load_module(TERRAFORM / "modules" / "berth_iam")
    docs = {n: b for _, blk in berth.blocks("data") for t, named in labels(blk)
            if t == "aws_iam_policy_document" for n, b in labels(named)}
    allowed_on_star = {
        "cloudformation:DescribeStacks", "cloudformation:ListStacks",
        "cloudformation:ValidateTemplate", "secretsmanager:GetRandomPassword",
        # A decommission finds the unit's secrets by tag; ListSecrets has no resource to scope.
        "secretsmanager:ListSecrets",
    }
    for stmt in docs["berth"]["statement"]:
        resources = _as_list(stmt.get("resources"))
        actions = set(_as_list(stmt.get("actions")))
        if "*" in resources:
            assert actions <= allowed_on_star, f"unexpected actions on *: {actions - allowed_on_star}"
        else:
            assert all(("local." in r) or ("aws_" in r) for r in resources), resources
        for a in actions:
            assert a.split(":")[0] in {"cloudformation", "secretsmanager", "iam", "kms", "s3"}, a


def test_node_user_data_joins_eks_and_registers_with_rancher():
    text = (TERRAFORM / "modules" / "nodes" / "user-data.tftpl").read_text()
    assert "kind: NodeConfig" in text and "apiServerEndpoint: ${cluster_endpoint}" in text
    assert "/v3/import/$${token}_$${cluster_id}.yaml" in text
    assert "sha256sum -c" in text
    # The token must never be written into user-data itself.
    assert "rancher_registration_token" not in text and "${rancher_url}" not in text


# ---------------------------------------------------------------------------------------------
# Negative tests: a bad snippet must be caught by each check
# ---------------------------------------------------------------------------------------------

GOOD_ROOT = """
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
locals {
  company = terraform.workspace
  tags    = { "berth:company" = terraform.workspace, ManagedBy = "terraform" }
}
"""


def tree(tmp_path: Path, root_extra: str, root: str = GOOD_ROOT) -> Path:
    (tmp_path / "modules").mkdir()
    (tmp_path / "main.tf").write_text(textwrap.dedent(root) + textwrap.dedent(root_extra))
    return tmp_path


def test_good_snippet_passes(tmp_path):
    good = """
    variable "region" {
      type        = string
      description = "Region."
    }
    resource "aws_s3_bucket" "b" {
      bucket = "x"
      tags   = local.tags
    }
    """
    assert check_tree(tree(tmp_path, good)) == []


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ('variable "a" {\n  description = "A."\n}\n', "variable a has no type"),
        ('variable "a" {\n  type = string\n}\n', "variable a has no description"),
        ('variable "db_password" {\n  type = string\n  description = "P."\n  sensitive = true\n  default = "hunter2"\n}\n',
         "variable db_password is secret/sensitive but has a default"),
        ('variable "api_token" {\n  type = string\n  description = "T."\n}\n',
         "variable api_token looks secret but is not sensitive"),
        ('variable "url" {\n  type = string\n  description = "U."\n  sensitive = true\n  default = "x"\n}\n',
         "variable url is secret/sensitive but has a default"),
        ('output "o" {\n  value = 1\n}\n', "output o has no description"),
        ('resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n', "aws_s3_bucket.b is not tagged"),
        ('resource "aws_s3_bucket" "b" {\n  bucket = "x"\n  tags = { a = "b" }\n}\n',
         "aws_s3_bucket.b tags do not include the common tag map"),
        ('resource "aws_launch_template" "lt" {\n  tags = local.tags\n}\n',
         "aws_launch_template.lt does not tag the instances and volumes"),
        ('resource "aws_autoscaling_group" "g" {\n  max_size = 1\n}\n', "aws_autoscaling_group.g has no tag blocks"),
        ('data "aws_iam_policy_document" "p" {\n  statement {\n    actions = ["*"]\n    resources = ["*"]\n  }\n}\n',
         "policy p statement 0 allows * on *"),
        ('data "aws_iam_policy_document" "p" {\n  statement {\n    actions = ["*"]\n    resources = ["arn:aws:s3:::x"]\n  }\n}\n',
         "policy p statement 0 allows every action"),
        ('resource "aws_iam_policy" "p" {\n  tags = local.tags\n  policy = jsonencode({\n    Version = "2012-10-17"\n'
         '    Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }]\n  })\n}\n',
         "aws_iam_policy.p.policy allows * on *"),
        ('resource "aws_iam_role_policy" "p" {\n  policy = <<JSON\n{"Statement": [{"Effect": "Allow", "Action": ["*"], '
         '"Resource": ["*"]}]}\nJSON\n}\n', "aws_iam_role_policy.p.policy allows * on *"),
        ('resource "aws_iam_role_policy_attachment" "a" {\n  role = "r"\n'
         '  policy_arn = "arn:aws:iam::aws:policy/AdministratorAccess"\n}\n', "attaches an admin managed policy"),
        ('resource "google_storage_bucket" "g" {\n  name = "x"\n}\n', "provider google is used but not pinned"),
    ],
)
def test_bad_snippet_is_caught(tmp_path, snippet, expected):
    problems = check_tree(tree(tmp_path, snippet))
    assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"


def test_deny_statement_with_star_is_not_flagged(tmp_path):
    snippet = ('resource "aws_iam_policy" "p" {\n  tags = local.tags\n  policy = jsonencode({\n'
               '    Statement = [{ Effect = "Deny", Action = "*", Resource = "*" }]\n  })\n}\n')
    assert check_tree(tree(tmp_path, snippet)) == []


@pytest.mark.parametrize(
    "root, expected",
    [
        (GOOD_ROOT.replace('version = "5.100.0"', 'version = "~> 5.0"'), "provider aws is not pinned to an exact version"),
        (GOOD_ROOT.replace('      version = "5.100.0"\n', ""), "provider aws is not pinned"),
        (GOOD_ROOT.replace('  required_version = ">= 1.6.0"\n', ""), "required_version is not set"),
        (GOOD_ROOT.replace("company = terraform.workspace", 'company = "seaview"'), "not derived from terraform.workspace"),
        (GOOD_ROOT.replace('ManagedBy = "terraform"', 'Owner = "x"'), "local.tags lacks the ManagedBy tag"),
    ],
)
def test_bad_root_is_caught(tmp_path, root, expected):
    problems = check_tree(tree(tmp_path, "", root=root))
    assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ('output "o" {\n  description = "O."\n  value = var.nope\n}\n', "var.nope is not declared"),
        ('output "o" {\n  description = "O."\n  value = local.nope\n}\n', "local.nope is not defined"),
        ('output "o" {\n  description = "O."\n  value = aws_s3_bucket.nope.id\n}\n', "aws_s3_bucket.nope is not declared"),
        ('output "o" {\n  description = "O."\n  value = data.aws_region.nope.name\n}\n', "data.aws_region.nope is not declared"),
        ('output "o" {\n  description = "O."\n  value = module.nope.x\n}\n', "module.nope is not declared"),
    ],
)
def test_dangling_reference_is_caught(tmp_path, snippet, expected):
    problems = check_tree(tree(tmp_path, snippet))
    assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"


CHILD = """
variable "name" {
  type        = string
  description = "Name."
}
variable "size" {
  type        = number
  description = "Size."
  default     = 1
}
output "id" {
  description = "Id."
  value       = templatefile("${path.module}/t.tftpl", { name = var.name })
}
"""


@pytest.mark.parametrize(
    "call, template, expected",
    [
        ('module "c" {\n  source = "./modules/child"\n  name = "x"\n}\n'
         'output "o" {\n  description = "O."\n  value = module.c.id\n}\n', "${name}", None),
        ('module "c" {\n  source = "./modules/child"\n}\n', "${name}", "module c misses required input name"),
        ('module "c" {\n  source = "./modules/child"\n  name = "x"\n  colour = "red"\n}\n', "${name}",
         "module c passes unknown input colour"),
        ('module "c" {\n  source = "./modules/child"\n  name = "x"\n}\n'
         'output "o" {\n  description = "O."\n  value = module.c.arn\n}\n', "${name}", "module.c has no output arn"),
        ('module "c" {\n  source = "./modules/nowhere"\n  name = "x"\n}\n', "${name}", "is not a module here"),
        ('module "c" {\n  source = "./modules/child"\n  name = "x"\n}\n', "${name} $${not_a_var} ${size}",
         "template t.tftpl uses size, which is not passed"),
    ],
)
def test_module_wiring_is_checked(tmp_path, call, template, expected):
    root = tree(tmp_path, call)
    child = root / "modules" / "child"
    child.mkdir()
    (child / "main.tf").write_text(textwrap.dedent(CHILD))
    (child / "t.tftpl").write_text(template)
    problems = check_tree(root)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"


POLICY_MODULE = """
data "aws_iam_policy_document" "p" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::x/*"]
  }
}
"""


@pytest.mark.parametrize(
    "test_file, expected",
    [
        ('mock_provider "aws" {}\nrun "r" {\n  module {\n    source = "./modules/child"\n  }\n'
         '  assert {\n    condition = length(data.aws_iam_policy_document.p.statement) == 1\n'
         '    error_message = "x"\n  }\n}\n', None),
        # asserted on, but in a run of the root module, where modules/child's document is not
        ('mock_provider "aws" {}\nrun "r" {\n  assert {\n    condition = length(data.aws_iam_policy_document.p.statement) == 1\n'
         '    error_message = "x"\n  }\n}\n', "policy p is asserted by no terraform test run"),
        ('mock_provider "aws" {}\nrun "r" {\n  module {\n    source = "./modules/child"\n  }\n}\n',
         "policy p is asserted by no terraform test run"),
        ('provider "aws" {}\nrun "r" {\n  module {\n    source = "./modules/child"\n  }\n'
         '  assert {\n    condition = length(data.aws_iam_policy_document.p.statement) == 1\n'
         '    error_message = "x"\n  }\n}\n', "does not mock the aws provider"),
    ],
)
def test_terraform_test_coverage_is_checked(tmp_path, test_file, expected):
    root = tree(tmp_path, "")
    child = root / "modules" / "child"
    child.mkdir()
    (child / "main.tf").write_text(textwrap.dedent(POLICY_MODULE))
    (root / "tests").mkdir()
    (root / "tests" / "t.tftest.hcl").write_text(test_file)
    problems = check_terraform_tests(root)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"
