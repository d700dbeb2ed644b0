"""Smoke test of berth_moto_ext: fails loudly when a moto upgrade moved what it hooks.

Runs in-process (moto's mock_aws, no server) against the real business-unit template:
create through a change set, read secrets and tags back (the registry password resolved from
the company's secret by dynamic reference, never in the template or parameters), a rotated
password reaching the unit's secret by the version parameter, parameter-only update, an
update without changes, an update failed by the fault switch and rolled back, delete
(secrets retained), scheduled secret deletion. Exit code 0 only when every check passed.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
TEMPLATE = os.path.join(HERE, "..", "..", "templates", "cloudformation", "business-unit.yaml")

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")

import berth_moto_ext as ext  # noqa: E402  (first: it must precede template parsing)
import berth_moto_faults as faults  # noqa: E402  (loaded by berth_moto_ext)
import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.cloudformation import models as cfn_models  # noqa: E402
from moto.cloudformation import parsing  # noqa: E402
from moto.iam import models as iam_models  # noqa: E402
from moto.secretsmanager import models as sm_models  # noqa: E402
from moto.secretsmanager import utils as sm_utils  # noqa: E402

REGION = os.environ["AWS_DEFAULT_REGION"]
RESULTS: list[tuple[str, bool, str]] = []
# The company's registry password secret (Berth writes it; the template reads it by reference).
PASSWORD_SECRET = "berth/seaview/registry-password"
PASSWORD = 'pull-"secret-value'
ROTATED = "rotated-pull-secret"
VERSION = {"id": ""}


def check(name: str, condition: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(condition), detail))


def params(**overrides: str) -> list[dict[str, str]]:
    values = {
        "CompanySlug": "seaview",
        "UnitSlug": "trucking",
        "TagKey": "SeaView",
        "TagValue": "Trucking",
        "RegistryServer": "registry.example.com",
        "RegistryUsername": "puller",
        "RegistryPasswordVersion": VERSION["id"],
        "OAuthClientId": "seaview-trucking",
        "DbUsername": "trucking",
    }
    values.update(overrides)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def signature_has(func: object, *names: str) -> bool:
    found = inspect.signature(func).parameters  # type: ignore[arg-type]
    return all(n in found for n in names)


def check_internals() -> None:
    check("moto version pinned", ext.EXPECTED_MOTO_VERSION == __import__("moto").__version__)
    check("model map holds the secret model",
          parsing.get_model_map().get("AWS::SecretsManager::Secret") is ext.BerthCfnSecret)
    check("references hook installed", parsing.get_references_from_template is ext.get_references_from_template)
    check("parse_resource hooked (dynamic references)", parsing.parse_resource is ext._parse_resource
          and "parse_resource(" in inspect.getsource(parsing.parse_resource_and_generate_name))
    check("secretsmanager get_secret_value arguments", signature_has(
        sm_models.SecretsManagerBackend.get_secret_value, "secret_id", "version_id", "version_stage"))
    check("ResourceMap.build_resource_diff(template, parameters)",
          signature_has(parsing.ResourceMap.build_resource_diff, "other_template", "parameters"))
    check("ResourceMap internals", hasattr(parsing.ResourceMap, "__init__") and
          "_resource_json_map" in inspect.getsource(parsing.ResourceMap.__init__) and
          "_parsed_resources" in inspect.getsource(parsing.ResourceMap.__init__))
    check("Stack helpers", all(hasattr(cfn_models.Stack, n) for n in ("_parse_template", "_create_output_map")))
    check("ChangeSet.diff hooked", cfn_models.ChangeSet.diff is ext._change_set_diff)
    check("execute_change_set hooked (faults first, then outputs follow the template)",
          cfn_models.CloudFormationBackend.execute_change_set is faults._execute_change_set
          and faults._execute_without_faults is ext._execute_change_set)
    check("ResourceMap.delete hooked (RetainExceptOnCreate)", parsing.ResourceMap.delete is ext._resource_map_delete
          and "DeletionPolicy" in inspect.getsource(ext._original_resource_map_delete))
    from moto.moto_server import werkzeug_app
    check("fault endpoint hooked into the server", werkzeug_app.DomainDispatcherApplication.__call__ is faults._dispatch)
    check("Event(stack_id, …, resource_status_reason, resource_properties)", signature_has(
        cfn_models.Event.__init__, "stack_id", "stack_name", "logical_resource_id", "physical_resource_id",
        "resource_type", "resource_status", "resource_status_reason", "resource_properties"))
    check("Change(action, logical_resource_id, resource_type)",
          signature_has(cfn_models.Change.__init__, "action", "logical_resource_id", "resource_type"))
    check("random_password arguments", list(inspect.signature(sm_utils.random_password).parameters) == [
        "password_length", "exclude_characters", "exclude_numbers", "exclude_punctuation",
        "exclude_uppercase", "exclude_lowercase", "include_space", "require_each_included_type"])
    backend = sm_models.SecretsManagerBackend
    check("secretsmanager create_secret arguments", signature_has(
        backend.create_secret, "name", "secret_string", "secret_binary", "description", "tags",
        "kms_key_id", "client_request_token", "replica_regions", "force_overwrite"))
    check("secretsmanager update/delete/tag arguments",
          signature_has(backend.update_secret, "secret_id", "secret_string", "description", "kms_key_id")
          and signature_has(backend.delete_secret, "secret_id", "recovery_window_in_days", "force_delete_without_recovery")
          and signature_has(backend.tag_resource, "arn", "tags")
          and signature_has(backend.untag_resource, "arn", "tag_keys"))
    iam = iam_models.IAMBackend
    check("iam user arguments", signature_has(iam.create_user, "region_name", "user_name", "path", "tags")
          and signature_has(iam.put_user_policy, "user_name", "policy_name", "policy_json")
          and signature_has(iam.delete_user_policy, "user_name", "policy_name")
          and signature_has(iam.tag_user, "name", "tags") and signature_has(iam.untag_user, "name", "tag_keys"))


def ext_account() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    return DEFAULT_ACCOUNT_ID


def wait_and_describe(cfn, stack: str, name: str):
    return cfn.describe_change_set(StackName=stack, ChangeSetName=name)


def check_end_to_end() -> None:
    body = open(TEMPLATE, encoding="utf-8").read()
    stack = "berth-seaview-trucking"
    tags = [{"Key": "SeaView", "Value": "Trucking"}, {"Key": "berth:managed-by", "Value": "berth"}]
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        sm = boto3.client("secretsmanager", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)

        def password_document(password: str) -> str:
            return json.dumps({"password": password, "password_json": json.dumps(password)[1:-1]})

        VERSION["id"] = sm.create_secret(Name=PASSWORD_SECRET, SecretString=password_document(PASSWORD))["VersionId"]

        cfn.create_change_set(StackName=stack, ChangeSetName="c1", ChangeSetType="CREATE",
                              TemplateBody=body, Parameters=params(), Tags=tags,
                              Capabilities=["CAPABILITY_IAM"])
        described = wait_and_describe(cfn, stack, "c1")
        added = sorted(c["ResourceChange"]["LogicalResourceId"] for c in described["Changes"])
        check("create change set lists every resource", "DatabaseSecret" in added and "S3User" in added, str(added))
        cfn.execute_change_set(StackName=stack, ChangeSetName="c1")
        described_stack = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        check("stack created", described_stack["StackStatus"] == "CREATE_COMPLETE", described_stack["StackStatus"])
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described_stack.get("Outputs", [])}
        check("outputs after change-set create", {"DatabaseSecretArn", "S3CredentialsSecretArn", "S3UserArn",
                                                  "RegistrySecretArn", "OAuthClientSecretArn"} <= set(outputs), str(outputs))

        db_arn = outputs.get("DatabaseSecretArn", "")
        check("Ref on a secret is its ARN", db_arn.startswith("arn:aws:secretsmanager:"), db_arn)
        db = json.loads(sm.get_secret_value(SecretId=db_arn)["SecretString"])
        check("generated db password", db.get("username") == "trucking" and len(db.get("password", "")) == 32, str(sorted(db)))
        check("excluded characters respected", not any(c in db.get("password", "") for c in "\"'@/\\:;`$%&#?"))
        s3 = json.loads(sm.get_secret_value(SecretId=outputs["S3CredentialsSecretArn"])["SecretString"])
        check("access key stored in secret", s3.get("access_key_id", "").startswith("AKIA") and len(s3.get("secret_access_key", "")) == 40)
        secret_tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=db_arn).get("Tags", [])}
        check("secret tags: own, stack and aws:cloudformation",
              secret_tags.get("SeaView") == "Trucking" and secret_tags.get("berth:unit") == "trucking"
              and secret_tags.get("aws:cloudformation:stack-name") == stack
              and secret_tags.get("aws:cloudformation:logical-id") == "DatabaseSecret", str(secret_tags))

        registry = json.loads(sm.get_secret_value(SecretId=outputs["RegistrySecretArn"])["SecretString"])
        check("registry password resolved by dynamic reference", registry.get("password") == PASSWORD,
              "a different value" if "password" in registry else "no password key")
        held = json.dumps(cfn.get_template(StackName=stack)["TemplateBody"]) + json.dumps(described_stack.get("Parameters", []))
        check("template and parameters hold the reference, not the password",
              "{{resolve:secretsmanager:" in held and "secret-value" not in held)

        # Rotation: a new version of the company's secret, and only the version parameter changes.
        VERSION["id"] = sm.put_secret_value(SecretId=PASSWORD_SECRET, SecretString=password_document(ROTATED))["VersionId"]
        cfn.create_change_set(StackName=stack, ChangeSetName="r1", ChangeSetType="UPDATE",
                              TemplateBody=body, Parameters=params(), Capabilities=["CAPABILITY_IAM"])
        rotated_changes = [c["ResourceChange"]["LogicalResourceId"] for c in wait_and_describe(cfn, stack, "r1")["Changes"]]
        check("a new password version modifies the registry secret", rotated_changes == ["RegistrySecret"], str(rotated_changes))
        cfn.execute_change_set(StackName=stack, ChangeSetName="r1")
        registry = json.loads(sm.get_secret_value(SecretId=outputs["RegistrySecretArn"])["SecretString"])
        check("rotated password reaches the unit's secret", registry.get("password") == ROTATED)
        try:
            cfn.create_change_set(StackName=stack, ChangeSetName="r2", ChangeSetType="UPDATE", TemplateBody=body,
                                  Parameters=params(RegistryPasswordVersion="0" * 36), Capabilities=["CAPABILITY_IAM"])
            cfn.execute_change_set(StackName=stack, ChangeSetName="r2")
            unresolved = ""
        except Exception as err:  # botocore ClientError
            unresolved = str(err)
        check("an unknown version fails the update", "does not resolve" in unresolved, unresolved)
        cfn.delete_change_set(StackName=stack, ChangeSetName="r2")

        user_name = outputs["S3UserArn"].rsplit("/", 1)[-1]
        policies = iam.list_user_policies(UserName=user_name)["PolicyNames"]
        check("inline user policy", policies == ["unit-data-prefix"], str(policies))
        user_tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user_name)["Tags"]}
        check("user tags", user_tags.get("SeaView") == "Trucking", str(user_tags))
        resources = {r["LogicalResourceId"]: r["ResourceType"] for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
        check("secrets listed as stack resources", resources.get("DatabaseSecret") == "AWS::SecretsManager::Secret", str(resources))

        # Parameter-only update that reaches exactly one secret through Fn::Sub.
        cfn.create_change_set(StackName=stack, ChangeSetName="c2", ChangeSetType="UPDATE",
                              TemplateBody=body, Parameters=params(RegistryServer="other.example.com"),
                              Capabilities=["CAPABILITY_IAM"])
        changes = wait_and_describe(cfn, stack, "c2")["Changes"]
        modified = [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"], c["ResourceChange"].get("Replacement")) for c in changes]
        check("parameter-only change set modifies only what changed", modified == [("Modify", "RegistrySecret", "False")], str(modified))
        cfn.execute_change_set(StackName=stack, ChangeSetName="c2")
        registry = json.loads(sm.get_secret_value(SecretId=outputs["RegistrySecretArn"])["SecretString"])
        check("updated secret value", registry.get("server") == "other.example.com", str(registry.get("server")))
        db_after = json.loads(sm.get_secret_value(SecretId=db_arn)["SecretString"])
        check("generated password stable across update", db_after.get("password") == db.get("password"))

        cfn.create_change_set(StackName=stack, ChangeSetName="c3", ChangeSetType="UPDATE",
                              TemplateBody=body, Parameters=params(RegistryServer="other.example.com"),
                              Capabilities=["CAPABILITY_IAM"])
        c3 = wait_and_describe(cfn, stack, "c3")
        check("no-change change set fails with the no-changes reason",
              c3["Status"] == "FAILED" and "didn't contain changes" in c3.get("StatusReason", ""), str(c3.get("StatusReason")))

        # Fault switch: the next update fails at RegistrySecret and rolls back.
        armed = faults.arm_update_fault(ext_account(), REGION, {
            "stack_name": stack, "logical_id": "RegistrySecret", "reason": "injected"})
        check("fault armed", armed["outcome"] == "rollback", str(armed))
        cfn.create_change_set(StackName=stack, ChangeSetName="c4", ChangeSetType="UPDATE",
                              TemplateBody=body, Parameters=params(RegistryServer="third.example.com"),
                              Capabilities=["CAPABILITY_IAM"])
        cfn.execute_change_set(StackName=stack, ChangeSetName="c4")
        rolled = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        check("failed update rolled back", rolled["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", rolled["StackStatus"])
        kept = {p["ParameterKey"]: p["ParameterValue"] for p in rolled.get("Parameters", [])}
        check("previous parameters kept", kept.get("RegistryServer") == "other.example.com", str(kept.get("RegistryServer")))
        registry = json.loads(sm.get_secret_value(SecretId=outputs["RegistrySecretArn"])["SecretString"])
        check("previous secret value kept", registry.get("server") == "other.example.com", str(registry.get("server")))
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        failed = [(e["LogicalResourceId"], e.get("ResourceStatusReason")) for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
        check("per-resource failure event", failed == [("RegistrySecret", "injected")], str(failed))
        check("newest event first", events[0]["ResourceStatus"] == "UPDATE_ROLLBACK_COMPLETE", events[0]["ResourceStatus"])
        cfn.create_change_set(StackName=stack, ChangeSetName="c5", ChangeSetType="UPDATE",
                              TemplateBody=body, Parameters=params(RegistryServer="third.example.com"),
                              Capabilities=["CAPABILITY_IAM"])
        cfn.execute_change_set(StackName=stack, ChangeSetName="c5")
        after = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        check("fault used up: next update works", after == "UPDATE_COMPLETE", after)

        cfn.delete_stack(StackName=stack)
        remaining = sorted(s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"] != PASSWORD_SECRET)
        check("secrets retained by RetainExceptOnCreate", len(remaining) == 4, str(remaining))
        sm.delete_secret(SecretId=remaining[0], RecoveryWindowInDays=7)
        listed = sm.list_secrets(IncludePlannedDeletion=True, Filters=[
            {"Key": "tag-key", "Values": ["berth:unit"]}, {"Key": "tag-value", "Values": ["trucking"]}])["SecretList"]
        planned = [s["Name"] for s in listed if s.get("DeletedDate")]
        check("ListSecrets with IncludePlannedDeletion and tag filters", len(listed) == 4 and planned == [remaining[0]],
              str([(s["Name"], s.get("DeletedDate")) for s in listed]))
        users = [u["UserName"] for u in iam.list_users()["Users"]]
        check("user deleted with the stack", user_name not in users, str(users))


def main() -> int:
    for step in (check_internals, check_end_to_end):
        try:
            step()
        except Exception:  # a moved internal often shows up as an exception
            RESULTS.append((step.__name__, False, traceback.format_exc()))
    failed = [r for r in RESULTS if not r[1]]
    for name, ok, detail in RESULTS:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if not ok and detail else ""))
    print(f"aws-emulator smoke: {len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print("berth_moto_ext no longer matches moto's internals or behaviour; see docs/aws.md (Local emulator)",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
