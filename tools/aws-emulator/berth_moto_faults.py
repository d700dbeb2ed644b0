"""The emulator's fault switch: the next update of a named stack fails and rolls back.

moto applies every update synchronously and never rolls back. Tests that need a real
UPDATE_ROLLBACK_* stack arm a fault for the *next* update of a named stack:

  POST /berth-emulator/fail-next-update
  x-moto-account-id: <account>            (optional; moto's default account otherwise)
  {"region": "eu-central-1", "stack_name": "berth-seaview-trucking",
   "logical_id": "RegistrySecret", "reason": "...",            (reason optional)
   "outcome": "rollback" | "rollback_failed"}                  (optional, "rollback")

The next ExecuteChangeSet of type UPDATE on that stack then changes nothing and ends in
UPDATE_ROLLBACK_COMPLETE (or UPDATE_ROLLBACK_FAILED), with the per-resource events real
CloudFormation writes: the resource's UPDATE_FAILED with the reason, the stack's rollback
events, newest first. The stack keeps its previous template, parameters, tags and
resources, as after a real rollback. The fault is used up by that one update; a moto
reset clears armed faults (they live on the account's CloudFormation backend).
GET on the same path lists the armed faults of the account and region.

berth_moto_ext imports this module once it has patched ``execute_change_set``, which this
module wraps; the moto version check is berth_moto_ext's.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.moto_server import werkzeug_app

FAULT_PATH = "/berth-emulator/fail-next-update"
_FAULT_OUTCOMES = ("rollback", "rollback_failed")


def _faults(backend: Any) -> dict[str, dict[str, str]]:
    if not hasattr(backend, "berth_faults"):
        backend.berth_faults = {}
    return backend.berth_faults


def _live_stack(backend: Any, name: str) -> Any:
    for stack in backend.stacks.values():
        if stack.name == name and stack.status != "DELETE_COMPLETE":
            return stack
    return None


def arm_update_fault(account_id: str, region: str, body: dict[str, Any]) -> dict[str, str]:
    """Arms a fault for the next update of ``body["stack_name"]``; raises ValueError."""
    stack_name = body.get("stack_name")
    logical_id = body.get("logical_id")
    outcome = body.get("outcome", "rollback")
    if not isinstance(stack_name, str) or not isinstance(logical_id, str):
        raise ValueError("stack_name and logical_id are required strings")
    if outcome not in _FAULT_OUTCOMES:
        raise ValueError(f"outcome must be one of {_FAULT_OUTCOMES}")
    backend = cfn_models.cloudformation_backends[account_id][region]
    stack = _live_stack(backend, stack_name)
    if stack is None:
        raise ValueError(f"no live stack {stack_name} in account {account_id}, region {region}")
    if logical_id not in (stack.template_dict.get("Resources") or {}):
        raise ValueError(f"stack {stack_name} has no resource {logical_id}")
    fault = {
        "stack_name": stack_name,
        "logical_id": logical_id,
        "reason": str(body.get("reason") or "Resource handler returned message: \"fault injected by the Berth emulator\""),
        "outcome": outcome,
    }
    _faults(backend)[stack_name] = fault
    return fault


def _fail_update(backend: Any, change_set: Any, stack: Any, fault: dict[str, str]) -> None:
    """What CloudFormation leaves after a failed update: nothing applied, events, status."""
    logical_id = fault["logical_id"]
    resources = stack.template_dict.get("Resources") or {}
    resource_type = resources.get(logical_id, {}).get("Type", "AWS::CloudFormation::CustomResource")
    existing = stack.resource_map._parsed_resources.get(logical_id)
    physical = getattr(existing, "physical_resource_id", None) or logical_id

    def resource_event(status: str, reason: str | None = None) -> None:
        stack.events.append(
            cfn_models.Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=logical_id,
                physical_resource_id=physical,
                resource_type=resource_type,
                resource_status=status,
                resource_status_reason=reason,
                resource_properties=None,
            )
        )

    stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
    resource_event("UPDATE_IN_PROGRESS")
    resource_event("UPDATE_FAILED", fault["reason"])
    stack._add_stack_event(
        "UPDATE_ROLLBACK_IN_PROGRESS",
        resource_status_reason=f"The following resource(s) failed to update: [{logical_id}].",
    )
    if fault["outcome"] == "rollback_failed":
        resource_event("UPDATE_FAILED", "Resource handler returned message: \"rollback refused by the Berth emulator\"")
        stack._add_stack_event(
            "UPDATE_ROLLBACK_FAILED",
            resource_status_reason=f"The following resource(s) failed to update: [{logical_id}].",
        )
        stack.status = "UPDATE_ROLLBACK_FAILED"
    else:
        resource_event("UPDATE_IN_PROGRESS")
        resource_event("UPDATE_COMPLETE")
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    change_set.execution_status = "EXECUTE_FAILED"


_execute_without_faults = cfn_models.CloudFormationBackend.execute_change_set


def _execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = self.describe_change_set(change_set_name)
    stack = self.stacks[change_set.stack_id]
    fault = _faults(self).get(stack.name)
    if fault is not None and change_set.change_set_type == "UPDATE":
        del _faults(self)[stack.name]
        _fail_update(self, change_set, stack, fault)
        return
    _execute_without_faults(self, change_set_name, stack_name)


cfn_models.CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]

def _fault_endpoint(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    from moto.core import DEFAULT_ACCOUNT_ID

    account_id = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
    method = environ.get("REQUEST_METHOD", "GET")
    status, payload = "200 OK", {}
    try:
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(body, dict) or not isinstance(body.get("region"), str):
                raise ValueError("a JSON object with region is required")
            payload = {"armed": arm_update_fault(account_id, body["region"], body)}
        elif method == "GET":
            from urllib.parse import parse_qs

            region = (parse_qs(environ.get("QUERY_STRING", "")).get("region") or ["us-east-1"])[0]
            backend = cfn_models.cloudformation_backends[account_id][region]
            payload = {"armed": list(_faults(backend).values())}
        else:
            status, payload = "405 Method Not Allowed", {"error": "GET or POST"}
    except (ValueError, KeyError) as err:
        status, payload = "400 Bad Request", {"error": str(err)}
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


_original_dispatch = werkzeug_app.DomainDispatcherApplication.__call__


def _dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("PATH_INFO") == FAULT_PATH:
        return _fault_endpoint(environ, start_response)
    return _original_dispatch(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _dispatch  # type: ignore[method-assign]
