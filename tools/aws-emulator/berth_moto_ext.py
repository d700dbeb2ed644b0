"""Berth's extension of moto 5.2.5 for CloudFormation stacks of business units.

Plain moto 5.2.5 accepts Berth's template but silently skips what matters to Berth (see
../shared/docs/aws-local.md). Importing this module, before moto parses its first template,
adds:

* a CloudFormation model for ``AWS::SecretsManager::Secret`` (Name, Description, KmsKeyId,
  SecretString, GenerateSecretString, Tags plus stack and ``aws:cloudformation:*`` tags;
  ``Ref``/``GetAtt Id`` give the ARN; update keeps a generated value unless its generator
  changes, a new Name replaces the secret; delete is a force delete);
* inline ``Policies`` and ``Tags`` on ``AWS::IAM::User`` for create, update and delete;
* ``${Param}`` inside ``Fn::Sub`` counted as a reference, so parameter-only updates reach the
  resources that use the parameter, also in change sets (``Changes`` lists them, with a
  ``Replacement`` value);
* after executing a change set, the stack's outputs, parameters and description follow the
  executed template (plain moto keeps the empty ones of a CREATE change set);
* ``{{resolve:secretsmanager:…}}`` dynamic references in resource properties resolved when
  the resource is created or updated (by name or ARN, JSON key, version stage or id), the
  template keeping the reference;
* ``DeletionPolicy: RetainExceptOnCreate`` retained on stack deletion, like ``Retain``;
* a fault switch, ``POST /berth-emulator/fail-next-update``: the next update of a named stack
  fails at a named resource and rolls back (``UPDATE_ROLLBACK_COMPLETE``, or
  ``UPDATE_ROLLBACK_FAILED`` on request), with per-resource events (berth_moto_faults.py).

It hooks moto internals, so it refuses any moto other than the pinned version, and
``smoke_test.py`` checks every hook end to end.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import moto

EXPECTED_MOTO_VERSION = "5.2.5"
if moto.__version__ != EXPECTED_MOTO_VERSION:
    raise RuntimeError(
        f"berth_moto_ext supports moto {EXPECTED_MOTO_VERSION} only, found {moto.__version__}; "
        "update tools/aws-emulator/requirements.txt and re-run smoke_test.py"
    )

from moto.cloudformation import models as cfn_models  # noqa: E402
from moto.cloudformation import parsing  # noqa: E402
from moto.core.common_models import CloudFormationModel  # noqa: E402
from moto.iam import models as iam_models  # noqa: E402
from moto.secretsmanager import models as sm_models  # noqa: E402
from moto.secretsmanager.utils import random_password  # noqa: E402
from moto.utilities.utils import get_partition  # noqa: E402

if parsing.get_model_map.cache_info().currsize:
    raise RuntimeError(
        "berth_moto_ext imported after moto built its CloudFormation model map; "
        "import it before the first template is parsed"
    )


# --------------------------------------------------------------------------- helpers


def _bool(value: Any, default: bool = False) -> bool:
    """Template booleans arrive as bool or as the strings "true"/"false"."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def _tag_list_to_dict(tags: Any) -> dict[str, str]:
    return {t["Key"]: str(t["Value"]) for t in (tags or []) if "Key" in t}


def _stack_tags(account_id: str, region_name: str, stack_id: str | None, logical_id: str | None) -> dict[str, str]:
    """Stack-level tags plus the aws:cloudformation:* tags CloudFormation adds."""
    if not stack_id:
        return {}
    backend = cfn_models.cloudformation_backends[account_id][region_name]
    stack = backend.stacks.get(stack_id)
    if stack is None:
        return {}
    tags = dict(stack.tags or {})
    tags["aws:cloudformation:stack-name"] = stack.name
    tags["aws:cloudformation:stack-id"] = stack.stack_id
    if logical_id:
        tags["aws:cloudformation:logical-id"] = logical_id
    return tags


def _generate_secret_string(spec: dict[str, Any]) -> str:
    """GenerateSecretString, reusing moto's password generator."""
    password = random_password(
        int(spec.get("PasswordLength", 32)),
        spec.get("ExcludeCharacters", "") or "",
        _bool(spec.get("ExcludeNumbers")),
        _bool(spec.get("ExcludePunctuation")),
        _bool(spec.get("ExcludeUppercase")),
        _bool(spec.get("ExcludeLowercase")),
        _bool(spec.get("IncludeSpace")),
        _bool(spec.get("RequireEachIncludedType"), default=True),
    )
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template is None and key is None:
        return password
    if template is None or key is None:
        raise ValueError("GenerateSecretString needs both SecretStringTemplate and GenerateStringKey, or neither")
    document = json.loads(template)
    if not isinstance(document, dict):
        raise ValueError("SecretStringTemplate must be a JSON object")
    document[key] = password
    return json.dumps(document, separators=(",", ":"))


def _value_source(props: dict[str, Any]) -> Any:
    """What determines a secret's value: a change here means a new value."""
    if "SecretString" in props:
        return ("string", props["SecretString"])
    return ("generate", props.get("GenerateSecretString") or {})


# --------------------------------------------------------------- Secrets Manager model


class BerthCfnSecret(CloudFormationModel):
    """AWS::SecretsManager::Secret managed by a stack; wraps moto's FakeSecret by name."""

    # moto's metaclass derives the service from the module path.
    __module__ = "moto.secretsmanager.berth_cfn"

    def __init__(
        self,
        account_id: str,
        region_name: str,
        name: str,
        arn: str,
        props: dict[str, Any],
        explicit_name: bool,
        stack_tags: dict[str, str],
    ) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.name = name
        self.arn = arn
        self.props = props
        self.explicit_name = explicit_name
        self.stack_tags = stack_tags

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Id":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        return sm_models.secretsmanager_backends[account_id][region_name]

    @classmethod
    def _create(
        cls,
        name: str,
        props: dict[str, Any],
        account_id: str,
        region_name: str,
        explicit_name: bool,
        stack_tags: dict[str, str],
    ) -> "BerthCfnSecret":
        if "SecretString" in props and "GenerateSecretString" in props:
            raise ValueError("SecretString and GenerateSecretString are mutually exclusive")
        value = props["SecretString"] if "SecretString" in props else _generate_secret_string(props.get("GenerateSecretString") or {})
        tags = {**stack_tags, **_tag_list_to_dict(props.get("Tags"))}
        backend = cls._backend(account_id, region_name)
        backend.create_secret(
            name=name,
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        secret = backend.secrets[name]
        return cls(account_id, region_name, name, secret.arn, dict(props), explicit_name, stack_tags)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> "BerthCfnSecret":
        props = cloudformation_json.get("Properties", {}) or {}
        stack_tags = _stack_tags(account_id, region_name, kwargs.get("StackId"), kwargs.get("LogicalId"))
        return cls._create(resource_name, props, account_id, region_name, "Name" in props, stack_tags)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: "BerthCfnSecret",
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> "BerthCfnSecret":
        props = cloudformation_json.get("Properties", {}) or {}
        old = original_resource
        wanted_name = props["Name"] if "Name" in props else (old.name if not old.explicit_name else new_resource_name)
        if wanted_name != old.name:
            # Name is a replacement property: new secret (new value) first, then the old one goes.
            new = cls._create(wanted_name, props, account_id, region_name, "Name" in props, old.stack_tags)
            old.delete(account_id, region_name)
            return new

        backend = cls._backend(account_id, region_name)
        if _value_source(props) != _value_source(old.props):
            value = props["SecretString"] if "SecretString" in props else _generate_secret_string(props.get("GenerateSecretString") or {})
            backend.update_secret(
                secret_id=old.name,
                secret_string=value,
                # moto treats an update without a token as a second create.
                client_request_token=str(uuid.uuid4()),
                description=props.get("Description"),
                kms_key_id=props.get("KmsKeyId"),
            )
        secret = backend.secrets[old.name]
        secret.description = props.get("Description")
        secret.kms_key_id = props.get("KmsKeyId")

        wanted_tags = {**old.stack_tags, **_tag_list_to_dict(props.get("Tags"))}
        current_tags = _tag_list_to_dict(secret.tags)
        stale = [k for k in current_tags if k not in wanted_tags]
        if stale:
            backend.untag_resource(old.arn, stale)
        backend.tag_resource(old.arn, wanted_tags)

        old.props = dict(props)
        old.explicit_name = "Name" in props
        return old

    def delete(self, account_id: str, region_name: str) -> None:
        backend = self._backend(account_id, region_name)
        if self.name in backend.secrets:
            backend.delete_secret(self.name, recovery_window_in_days=None, force_delete_without_recovery=True)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        backend = cls._backend(account_id, region_name)
        if resource_name in backend.secrets:
            backend.delete_secret(resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)


# ------------------------------------------------------ IAM users: Policies and Tags

_User = iam_models.User


def _iam_backend(account_id: str, region_name: str) -> Any:
    return iam_models.iam_backends[account_id][get_partition(region_name)]


def _policy_json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _user_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any) -> Any:
    props = cloudformation_json.get("Properties", {}) or {}
    stack_tags = _stack_tags(account_id, region_name, kwargs.get("StackId"), kwargs.get("LogicalId"))
    tags = {**stack_tags, **_tag_list_to_dict(props.get("Tags"))}
    backend = _iam_backend(account_id, region_name)
    user = backend.create_user(
        region_name=region_name,
        user_name=resource_name,
        path=props.get("Path") or "/",
        tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    for policy in props.get("Policies") or []:
        backend.put_user_policy(user.name, policy["PolicyName"], _policy_json(policy["PolicyDocument"]))
    user.berth_props = dict(props)
    user.berth_stack_tags = stack_tags
    return user


def _user_delete_by_name(account_id: str, region_name: str, name: str) -> None:
    backend = _iam_backend(account_id, region_name)
    user = backend.users.get(name)
    if user is None:
        return
    for policy_name in list(user.policies):
        backend.delete_user_policy(name, policy_name)
    backend.delete_user(name)


def _user_update(cls: type, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
    props = cloudformation_json.get("Properties", {}) or {}
    old_props = getattr(original_resource, "berth_props", {})
    stack_tags = getattr(original_resource, "berth_stack_tags", {})
    if props.get("UserName") != old_props.get("UserName"):
        # UserName is a replacement property.
        name = props.get("UserName") or new_resource_name
        new = _user_create(cls, name, cloudformation_json, account_id, region_name)
        new.berth_stack_tags = stack_tags
        _user_delete_by_name(account_id, region_name, original_resource.name)
        return new

    backend = _iam_backend(account_id, region_name)
    user = original_resource
    user.path = props.get("Path") or "/"
    wanted = {p["PolicyName"]: _policy_json(p["PolicyDocument"]) for p in props.get("Policies") or []}
    for policy_name in list(user.policies):
        if policy_name not in wanted:
            backend.delete_user_policy(user.name, policy_name)
    for policy_name, document in wanted.items():
        backend.put_user_policy(user.name, policy_name, document)

    wanted_tags = {**stack_tags, **_tag_list_to_dict(props.get("Tags"))}
    current = _tag_list_to_dict(user.tags)
    stale = [k for k in current if k not in wanted_tags]
    if stale:
        backend.untag_user(user.name, stale)
    backend.tag_user(user.name, [{"Key": k, "Value": v} for k, v in wanted_tags.items()])
    user.berth_props = dict(props)
    return user


def _user_delete(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> None:
    _user_delete_by_name(account_id, region_name, resource_name)


_User.create_from_cloudformation_json = classmethod(_user_create)  # type: ignore[method-assign,assignment]
_User.update_from_cloudformation_json = classmethod(_user_update)  # type: ignore[method-assign,assignment]
_User.delete_from_cloudformation_json = classmethod(_user_delete)  # type: ignore[method-assign,assignment]


# ------------------------------------------------- Fn::Sub references in updates

_SUB_VAR = re.compile(r"\$\{([^!}][^}]*)\}")


def _sub_names(template: str) -> list[str]:
    return [m.group(1).split(".")[0].strip() for m in _SUB_VAR.finditer(template)]


def get_references_from_template(template: Any) -> list[str]:
    """Like moto's, but `${Name}` inside Fn::Sub counts as a reference to Name."""
    references: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key == "Ref":
                references.append(value)
            elif key == "Fn::Sub":
                if isinstance(value, str):
                    references.extend(_sub_names(value))
                elif isinstance(value, list) and value:
                    body = value[0] if isinstance(value[0], str) else ""
                    local = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
                    references.extend(n for n in _sub_names(body) if n not in local)
                    references.extend(get_references_from_template(local))
            else:
                references.extend(get_references_from_template(value))
    elif isinstance(template, list):
        for item in template:
            references.extend(get_references_from_template(item))
    return references


parsing.get_references_from_template = get_references_from_template


# ------------------------------------------ dynamic references to Secrets Manager
#
# CloudFormation resolves ``{{resolve:secretsmanager:<secret-id>:SecretString:<json-key>:
# <version-stage>:<version-id>}}`` in resource properties when it creates or updates the
# resource (after Fn::Sub and the other functions), and keeps only the reference in the
# template and parameters. moto 5.2.5 passes the reference through as text. Here it is
# resolved, in the copy of the properties moto hands to the resource, from the Secrets
# Manager backend of the stack's account and region; GetTemplate still returns the reference.
# A reference that does not resolve (no such secret, version or key) fails the operation with
# a ValidationError naming the reference (real CloudFormation fails the resource and rolls
# back, which moto cannot).

_DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:secretsmanager:([^{}]*)\}\}")


def _resolve_secret_reference(reference: str, account_id: str, region_name: str) -> str:
    """The value a ``resolve:secretsmanager`` reference (the part after it) stands for."""
    from moto.cloudformation.exceptions import ValidationError

    # The secret id may be an ARN, which has colons of its own: the last four fields are
    # SecretString, json-key, version-stage and version-id (each optional from the right).
    fields = reference.split(":")
    if reference.startswith("arn:"):
        secret_id, rest = ":".join(fields[:7]), fields[7:]
    else:
        secret_id, rest = fields[0], fields[1:]
    rest += [""] * (4 - len(rest))
    if len(rest) > 4 or rest[0] not in ("", "SecretString"):
        raise ValidationError(message=f"malformed dynamic reference {{{{resolve:secretsmanager:{reference}}}}}")
    _, json_key, version_stage, version_id = rest
    if version_stage and version_id:
        raise ValidationError(message=f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}} names both a version stage and a version id")
    backend = sm_models.secretsmanager_backends[account_id][region_name]
    try:
        out = backend.get_secret_value(secret_id, version_id or None, version_stage or ("AWSCURRENT" if not version_id else None))
    except Exception as err:  # moto's Secrets Manager errors: not found, deleted, no such version
        raise ValidationError(message=f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}} does not resolve: {getattr(err, 'message', err)}") from None
    value = out.get("SecretString")
    if value is None:
        raise ValidationError(message=f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}}: the secret has no string value")
    if not json_key:
        return value
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if not isinstance(document, dict) or json_key not in document:
        raise ValidationError(message=f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}}: no key {json_key} in the secret's JSON")
    found = document[json_key]
    return found if isinstance(found, str) else json.dumps(found)


def resolve_dynamic_references(value: Any, account_id: str, region_name: str) -> Any:
    """``value`` with every ``{{resolve:secretsmanager:…}}`` in its strings resolved."""
    if isinstance(value, str):
        if "{{resolve:secretsmanager:" not in value:
            return value
        return _DYNAMIC_REFERENCE.sub(lambda m: _resolve_secret_reference(m.group(1), account_id, region_name), value)
    if isinstance(value, dict):
        return {k: resolve_dynamic_references(v, account_id, region_name) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_dynamic_references(v, account_id, region_name) for v in value]
    return value


_original_parse_resource = parsing.parse_resource


def _parse_resource(resource_json: dict[str, Any], resources_map: Any) -> Any:
    parsed = _original_parse_resource(resource_json, resources_map)
    if not parsed:
        return parsed
    resource_class, cleaned, resource_type = parsed
    if isinstance(cleaned, dict) and "Properties" in cleaned:
        # clean_json built a new dict: the stored template keeps the reference.
        cleaned = {
            **cleaned,
            "Properties": resolve_dynamic_references(
                cleaned["Properties"], resources_map._account_id, resources_map._region_name
            ),
        }
    return resource_class, cleaned, resource_type


parsing.parse_resource = _parse_resource


# ------------------------------------------------------------- deletion policies

_original_resource_map_delete = parsing.ResourceMap.delete


def _resource_map_delete(self: Any) -> None:
    """moto retains only ``DeletionPolicy: Retain`` on stack deletion; real CloudFormation
    retains ``RetainExceptOnCreate`` too (it only deletes such a resource when the operation
    that created it rolls back, which moto never does)."""
    marked = [
        value
        for value in self._resource_json_map.values()
        if value.get("DeletionPolicy") == "RetainExceptOnCreate"
    ]
    for value in marked:
        value["DeletionPolicy"] = "Retain"
    try:
        _original_resource_map_delete(self)
    finally:
        for value in marked:
            value["DeletionPolicy"] = "RetainExceptOnCreate"


parsing.ResourceMap.delete = _resource_map_delete  # type: ignore[method-assign]


# ------------------------------------------------------------------ change sets

# Properties whose change replaces the resource, for the change set's Replacement field.
_REPLACEMENT_PROPERTIES = {
    "AWS::SecretsManager::Secret": {"Name"},
    "AWS::IAM::User": {"UserName"},
    "AWS::IAM::AccessKey": {"UserName", "Serial"},
    "AWS::S3::Bucket": {"BucketName"},
}


def _change_set_diff(self: Any) -> list[Any]:
    """Changes including parameter-only modifications, with Replacement and physical ids."""
    resource_map = self.stack.resource_map
    by_action = resource_map.build_resource_diff(self.template_dict, self.parameters or None)
    new_resources = self.template_dict.get("Resources", {})
    old_resources = resource_map._resource_json_map
    changes = []
    for action, names in by_action.items():
        for name in names:
            source = new_resources if action != "Remove" else old_resources
            resource_type = source[name]["Type"]
            change = cfn_models.Change(action=action, logical_resource_id=name, resource_type=resource_type)
            if action != "Add":
                existing = resource_map._parsed_resources.get(name)
                physical = getattr(existing, "physical_resource_id", None)
                if physical:
                    change.physical_resource_id = physical
            if action == "Modify":
                known = _REPLACEMENT_PROPERTIES.get(resource_type)
                if known is None:
                    change.replacement = "Conditional"
                else:
                    old_props = old_resources.get(name, {}).get("Properties", {}) or {}
                    new_props = new_resources[name].get("Properties", {}) or {}
                    replaced = any(old_props.get(p) != new_props.get(p) for p in known)
                    change.replacement = "True" if replaced else "False"
            changes.append(change)
    return changes


cfn_models.ChangeSet.diff = _change_set_diff  # type: ignore[method-assign]

_original_execute_change_set = cfn_models.CloudFormationBackend.execute_change_set


def _execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = self.describe_change_set(change_set_name)
    stack = self.stacks[change_set.stack_id]
    _original_execute_change_set(self, change_set_name, stack_name)
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters or {})
    if change_set.tags:
        stack.tags = dict(change_set.tags)
    stack.output_map = stack._create_output_map()


cfn_models.CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]


# The fault switch wraps the execution above, so it is loaded after it.
import berth_moto_faults  # noqa: E402,F401
