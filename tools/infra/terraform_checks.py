"""Policy checks on terraform/ that need no terraform binary (tools/infra/check.sh runs them
before terraform's own fmt, validate and test, see terraform/README.md).

The HCL is parsed with python-hcl2 (installed by tools/infra/setup.sh into a separate directory,
because checkov ships a fork under the same import name) and checked for:

* every variable (root and modules) has a type and a non-empty description; outputs are described;
* no sensitive or secret-looking variable has a default, and secret-looking ones are sensitive;
* every taggable resource sets tags explicitly from the common tag map (we decided against
  provider `default_tags`, see terraform/providers.tf), and the root tag map carries the company;
* terraform and every provider are pinned (providers to an exact version);
* no IAM policy allows action "*" on resource "*", and no admin-style managed policy is attached;
* names derive from terraform.workspace;
* every IAM policy document is asserted on by a `terraform test` run (terraform/tests), and every
  test file mocks the AWS provider (so `terraform test` never reaches AWS);
* references resolve (a "validate-lite" that needs no provider; `terraform validate` then checks
  the configuration against the provider's schema): every
  var./local./module./data./resource reference names something declared, every module call passes
  exactly known inputs and all required ones, and every templatefile() gets the names its
  template uses.

test_terraform.py runs them on the real tree and on bad snippets.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HCL_SITE = ROOT / ".local" / "venv-infra" / "hcl2-site"
if HCL_SITE.is_dir():
    sys.path.insert(0, str(HCL_SITE))

import hcl2  # noqa: E402  (python-hcl2, from HCL_SITE)

TERRAFORM = ROOT / "terraform"

# Resource types that AWS or the provider cannot tag. Anything not listed here (and not handled
# specially below) must set `tags`, so a new resource type is checked by default.
NON_TAGGABLE = {
    "aws_route",
    "aws_route_table_association",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_iam_user_policy",
    "aws_eks_access_policy_association",
    "aws_kms_alias",
    "aws_secretsmanager_secret_version",
    "aws_security_group_rule",
    "aws_autoscaling_attachment",
}
# Taggable through other blocks than `tags`.
TAG_BLOCKS = {"aws_autoscaling_group": "tag"}
# Also need per-created-resource tag specifications.
NEEDS_TAG_SPECIFICATIONS = {"aws_launch_template"}

SECRET_NAME = re.compile(r"(token|secret|password|passwd|private_key|credential|api_key)", re.I)
EXACT_VERSION = re.compile(r"^=?\s*\d+\.\d+\.\d+$")
ADMIN_POLICIES = re.compile(r"policy/(AdministratorAccess|PowerUserAccess|IAMFullAccess)\b")
ROOT_TAG_KEYS = {"berth:company", "ManagedBy"}


def unquote(value):
    """python-hcl2 8 keeps string literals quoted and wraps expressions in ${...}."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
    return value


def labels(block: dict) -> list[tuple[str, dict]]:
    """Yield (label, body) of a labelled block, skipping the parser's metadata keys."""
    return [(unquote(k), v) for k, v in block.items() if not k.startswith("__")]


@dataclass
class Module:
    path: Path
    files: dict[str, dict] = field(default_factory=dict)

    def blocks(self, kind: str):
        for name, doc in self.files.items():
            for block in doc.get(kind, []):
                yield name, block


def load_module(path: Path) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as fh:
            module.files[tf.name] = hcl2.load(fh)
    return module


def all_modules(root: Path) -> list[Module]:
    dirs = [root] + sorted(p for p in (root / "modules").glob("*") if p.is_dir())
    return [load_module(d) for d in dirs if list(d.glob("*.tf"))]


# ---------------------------------------------------------------------------------------------
# Checks: each returns a list of human-readable problems.
# ---------------------------------------------------------------------------------------------

def check_variables(module: Module) -> list[str]:
    problems = []
    for fname, block in module.blocks("variable"):
        for name, body in labels(block):
            where = f"{module.path.name}/{fname}: variable {name}"
            if "type" not in body:
                problems.append(f"{where} has no type")
            if not str(unquote(body.get("description", ""))).strip():
                problems.append(f"{where} has no description")
            secretish = bool(SECRET_NAME.search(name))
            sensitive = body.get("sensitive") is True
            if (secretish or sensitive) and "default" in body:
                problems.append(f"{where} is secret/sensitive but has a default")
            if secretish and not sensitive:
                problems.append(f"{where} looks secret but is not sensitive = true")
    for fname, block in module.blocks("output"):
        for name, body in labels(block):
            if not str(unquote(body.get("description", ""))).strip():
                problems.append(f"{module.path.name}/{fname}: output {name} has no description")
    return problems


def _tag_expr_ok(expr) -> bool:
    text = json.dumps(expr)
    return "var.tags" in text or "local.tags" in text


def check_tags(module: Module) -> list[str]:
    problems = []
    for fname, block in module.blocks("resource"):
        for rtype, named in labels(block):
            if not rtype.startswith("aws_") or rtype in NON_TAGGABLE:
                continue
            for rname, body in labels(named):
                where = f"{module.path.name}/{fname}: {rtype}.{rname}"
                if rtype in TAG_BLOCKS:
                    dyn = [d for d in body.get("dynamic", []) for k, _ in labels(d) if k == TAG_BLOCKS[rtype]]
                    static = body.get(TAG_BLOCKS[rtype], [])
                    if not (dyn and _tag_expr_ok(dyn)) and not static:
                        problems.append(f"{where} has no tag blocks from the common tags")
                    continue
                if "tags" not in body:
                    problems.append(f"{where} is not tagged")
                elif not _tag_expr_ok(body["tags"]):
                    problems.append(f"{where} tags do not include the common tag map")
                if rtype in NEEDS_TAG_SPECIFICATIONS:
                    specs = body.get("tag_specifications", [])
                    kinds = {unquote(s.get("resource_type")) for s in specs}
                    if not {"instance", "volume"} <= kinds or not all(_tag_expr_ok(s.get("tags")) for s in specs):
                        problems.append(f"{where} does not tag the instances and volumes it launches")
    return problems


def check_root_tags_and_naming(module: Module) -> list[str]:
    problems = []
    locals_ = {}
    for _, block in module.blocks("locals"):
        locals_.update({k: v for k, v in block.items() if not k.startswith("__")})
    if "terraform.workspace" not in json.dumps(locals_.get("company", "")):
        problems.append("root: local.company is not derived from terraform.workspace")
    tags_text = json.dumps(locals_.get("tags", ""))
    for key in ROOT_TAG_KEYS:
        if key not in tags_text:
            problems.append(f"root: local.tags lacks the {key} tag")
    return problems


def check_pins(module: Module) -> list[str]:
    problems = []
    terraform_blocks = [b for _, b in module.blocks("terraform")]
    if not terraform_blocks:
        return ["root: no terraform block"]
    if not any("required_version" in b for b in terraform_blocks):
        problems.append("root: terraform required_version is not set")
    providers = {}
    for b in terraform_blocks:
        for rp in b.get("required_providers", []):
            providers.update({k: v for k, v in rp.items() if not k.startswith("__")})
    if not providers:
        problems.append("root: no required_providers")
    for name, spec in providers.items():
        version = unquote(spec.get("version", "")) if isinstance(spec, dict) else ""
        if not EXACT_VERSION.match(str(version)):
            problems.append(f"root: provider {name} is not pinned to an exact version ({version!r})")
        if isinstance(spec, dict) and "source" not in spec:
            problems.append(f"root: provider {name} has no source")
    return problems


def check_used_providers_declared(modules: list[Module]) -> list[str]:
    root = modules[0]
    declared = set()
    for _, b in root.blocks("terraform"):
        for rp in b.get("required_providers", []):
            declared |= {k for k in rp if not k.startswith("__")}
    used = set()
    for m in modules:
        for kind in ("resource", "data"):
            for _, block in m.blocks(kind):
                for rtype, _ in labels(block):
                    prefix = rtype.split("_", 1)[0]
                    if prefix != "terraform":
                        used.add(prefix)
    return [f"provider {p} is used but not pinned in the root module" for p in sorted(used - declared)]


def _as_list(value) -> list:
    if value is None:
        return []
    value = unquote(value)
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return [value]


def _star_statements_in_json(text: str) -> int:
    """Count Allow statements with Action "*" and Resource "*" in JSON or jsonencode() text."""
    count = 0
    cleaned = text.replace("\\\"", '"')
    for stmt in re.findall(r"\{[^{}]*\}", cleaned, flags=re.S):
        allow = not re.search(r'"?Effect"?\s*[:=]\s*"Deny"', stmt)
        action = re.search(r'"?Action"?\s*[:=]\s*(\[\s*)?"\*"', stmt)
        resource = re.search(r'"?Resource"?\s*[:=]\s*(\[\s*)?"\*"', stmt)
        if allow and action and resource:
            count += 1
    return count


def check_iam(module: Module) -> list[str]:
    problems = []
    for fname, block in module.blocks("data"):
        for dtype, named in labels(block):
            if dtype != "aws_iam_policy_document":
                continue
            for dname, body in labels(named):
                for i, stmt in enumerate(body.get("statement", [])):
                    effect = unquote(stmt.get("effect", "Allow"))
                    actions = _as_list(stmt.get("actions"))
                    resources = _as_list(stmt.get("resources"))
                    if effect == "Allow" and "*" in actions and "*" in resources:
                        problems.append(f"{module.path.name}/{fname}: policy {dname} statement {i} allows * on *")
                    if effect == "Allow" and "*" in actions:
                        problems.append(f"{module.path.name}/{fname}: policy {dname} statement {i} allows every action")
    for fname, block in module.blocks("resource"):
        for rtype, named in labels(block):
            for rname, body in labels(named):
                for attr in ("policy", "assume_role_policy", "inline_policy"):
                    if attr in body and _star_statements_in_json(json.dumps(body[attr])):
                        problems.append(f"{module.path.name}/{fname}: {rtype}.{rname}.{attr} allows * on *")
                if ADMIN_POLICIES.search(json.dumps(body.get("policy_arn", ""))):
                    problems.append(f"{module.path.name}/{fname}: {rtype}.{rname} attaches an admin managed policy")
    for fname, block in module.blocks("module"):
        for mname, body in labels(block):
            if ADMIN_POLICIES.search(json.dumps(body.get("managed_policy_arns", ""))):
                problems.append(f"{module.path.name}/{fname}: module {mname} attaches an admin managed policy")
            if _star_statements_in_json(json.dumps(body.get("inline_policies", ""))):
                problems.append(f"{module.path.name}/{fname}: module {mname} inline policy allows * on *")
    return problems


META_ARGS = {"source", "count", "for_each", "depends_on", "providers", "version"}
REF = {
    "var": re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)"),
    "local": re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)"),
    "module": re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[[^\]]*\])?\.([A-Za-z_][A-Za-z0-9_-]*)"),
    "data": re.compile(r"\bdata\.([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)"),
    "resource": re.compile(r"(?<![.\w\"/:-])(aws_[a-z0-9_]+|terraform_data)\.([A-Za-z_][A-Za-z0-9_-]*)"),
}
TEMPLATE_REF = re.compile(r"(?<!\$)\$\{\s*([A-Za-z_][A-Za-z0-9_]*)|%\{\s*if\s+([A-Za-z_][A-Za-z0-9_]*)")


def _code_without_comments(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        stripped = line.lstrip()
        lines.append("" if stripped.startswith(("#", "//")) else line)
    return "\n".join(lines)


def module_symbols(module: Module) -> dict[str, set]:
    sym = {"var": set(), "required": set(), "local": set(), "output": set(), "module": {},
           "data": set(), "resource": set()}
    for _, block in module.blocks("variable"):
        for name, body in labels(block):
            sym["var"].add(name)
            if "default" not in body:
                sym["required"].add(name)
    for _, block in module.blocks("locals"):
        sym["local"] |= {k for k in block if not k.startswith("__")}
    for _, block in module.blocks("output"):
        sym["output"] |= {n for n, _ in labels(block)}
    for _, block in module.blocks("module"):
        for name, body in labels(block):
            sym["module"][name] = body
    for kind in ("data", "resource"):
        for _, block in module.blocks(kind):
            for rtype, named in labels(block):
                sym[kind] |= {(rtype, n) for n, _ in labels(named)}
    return sym


def check_references(module: Module, by_path: dict[Path, Module]) -> list[str]:
    problems = []
    sym = module_symbols(module)
    for tf in sorted(module.path.glob("*.tf")):
        code = _code_without_comments(tf)
        where = f"{module.path.name}/{tf.name}"
        for name in sorted(set(REF["var"].findall(code)) - sym["var"]):
            problems.append(f"{where}: var.{name} is not declared")
        for name in sorted(set(REF["local"].findall(code)) - sym["local"]):
            problems.append(f"{where}: local.{name} is not defined")
        for dtype, name in sorted(set(REF["data"].findall(code)) - sym["data"]):
            problems.append(f"{where}: data.{dtype}.{name} is not declared")
        for rtype, name in sorted(set(REF["resource"].findall(code))):
            if (rtype, name) not in sym["resource"] and (rtype, name) not in sym["data"]:
                problems.append(f"{where}: {rtype}.{name} is not declared")
        for mname, output in sorted(set(REF["module"].findall(code))):
            call = sym["module"].get(mname)
            if call is None:
                problems.append(f"{where}: module.{mname} is not declared")
                continue
            child = by_path.get((module.path / unquote(call["source"])).resolve())
            if child is not None and output not in module_symbols(child)["output"]:
                problems.append(f"{where}: module.{mname} has no output {output}")
        for match in re.finditer(r'templatefile\(\s*"([^"]+)"\s*,\s*\{(.*?)\}\s*\)', code, flags=re.S):
            template = module.path / match.group(1).replace("${path.module}/", "")
            passed = set(re.findall(r"(?:^|[{,\n])\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", match.group(2)))
            if not template.is_file():
                problems.append(f"{where}: template {template.name} does not exist")
                continue
            used = {a or b for a, b in TEMPLATE_REF.findall(template.read_text())}
            for name in sorted(used - passed):
                problems.append(f"{where}: template {template.name} uses {name}, which is not passed")
    for mname, call in sym["module"].items():
        source = unquote(call.get("source", ""))
        child = by_path.get((module.path / source).resolve())
        if child is None:
            problems.append(f"{module.path.name}: module {mname} source {source} is not a module here")
            continue
        child_sym = module_symbols(child)
        args = {k for k in call if not k.startswith("__")} - META_ARGS
        for name in sorted(args - child_sym["var"]):
            problems.append(f"{module.path.name}: module {mname} passes unknown input {name}")
        for name in sorted(child_sym["required"] - args):
            problems.append(f"{module.path.name}: module {mname} misses required input {name}")
    return problems


RUN_BLOCK = re.compile(r'^run\s+"([^"]+)"\s*\{', re.M)
RUN_MODULE_SOURCE = re.compile(r'module\s*\{[^}]*?source\s*=\s*"([^"]+)"', re.S)
POLICY_DOC_REF = re.compile(r"\bdata\.aws_iam_policy_document\.([A-Za-z_][A-Za-z0-9_-]*)")


def check_terraform_tests(root: Path) -> list[str]:
    """Every aws_iam_policy_document is asserted on by some `terraform test` run of the module that
    declares it, and every test file mocks the AWS provider instead of configuring a real one."""
    problems = []
    test_files = sorted((root / "tests").rglob("*.tftest.hcl")) if (root / "tests").is_dir() else []
    covered = set()
    for path in test_files:
        text = _code_without_comments(path)
        where = path.relative_to(root)
        if not re.search(r'^mock_provider\s+"aws"', text, flags=re.M):
            problems.append(f"{where}: does not mock the aws provider")
        if re.search(r'^provider\s+"aws"', text, flags=re.M):
            problems.append(f"{where}: configures a real aws provider")
        starts = [m.start() for m in RUN_BLOCK.finditer(text)] + [len(text)]
        for begin, end in zip(starts, starts[1:]):
            run = text[begin:end]
            source = RUN_MODULE_SOURCE.search(run)
            module_dir = (root / source.group(1)).resolve() if source else root.resolve()
            covered |= {(module_dir, name) for name in POLICY_DOC_REF.findall(run)}
    for module in all_modules(root):
        for fname, block in module.blocks("data"):
            for dtype, named in labels(block):
                if dtype != "aws_iam_policy_document":
                    continue
                for dname, _ in labels(named):
                    if (module.path.resolve(), dname) not in covered:
                        problems.append(f"{module.path.name}/{fname}: policy {dname} is asserted by no terraform test run")
    return problems


def check_tree(root: Path) -> list[str]:
    modules = all_modules(root)
    by_path = {m.path.resolve(): m for m in modules}
    problems = check_pins(modules[0]) + check_root_tags_and_naming(modules[0])
    problems += check_used_providers_declared(modules)
    for m in modules:
        problems += check_variables(m) + check_tags(m) + check_iam(m) + check_references(m, by_path)
    return problems
