"""Runs a published Architect workflow (flows.py) the way a Process Automation trigger starts it.

What runs is the published Archy YAML, not a hard-coded copy: its input variables receive the
trigger's data (dataFormat TopLevelPrimitives: each top-level primitive attribute of the event
goes to the input variable `Flow.<attribute>` of the same name and type; the rest stay NOT_SET),
then the start-up state's actions run in order. The emulator knows the actions the shipped
workflow uses:

  callData     the data action `category -> <integration name> -> dataAction -> <action name>`,
               inputs from `exp: Flow.x` (NOT_SET inputs are left out) or `lit`; its request
               rendered with Velocity (velocity.py) and sent with the integration's basicAuth
               credential (HTTP Basic); outputs success (2xx with a JSON body), failure (anything
               else, including a required input missing) or timeout (the action's `timeout`).
  endWorkflow  ends the run with its exitReason.

Any other action ends the run as an error naming it (the emulator says what it can't do rather
than pretend). The run is never retried: Genesys documents no retry of a trigger's invocation.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from . import integrations
from .velocity import TemplateError, render
from .wire import tls

DEFAULT_TIMEOUT = 30.0  # seconds, when the callData has none
PRIMITIVES = {"integerVariable": int, "stringVariable": str, "booleanVariable": bool, "decimalVariable": float}


class Unsupported(Exception):
    pass


def _inputs(workflow: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """TopLevelPrimitives: Flow.<name> <- data[name] when the types agree."""
    values: dict[str, Any] = {}
    for entry in workflow.get("variables") or []:
        (kind, var), = entry.items()
        if not var.get("isInput"):
            continue
        name = str(var["name"]).removeprefix("Flow.")
        value = data.get(name)
        wanted = PRIMITIVES.get(kind)
        if value is not None and wanted is not None and isinstance(value, wanted) \
                and not (wanted is int and isinstance(value, bool)):
            values[name] = value
    return values


def _value(spec: Any, flow_vars: dict[str, Any]) -> Any:
    if isinstance(spec, dict) and "lit" in spec:
        return spec["lit"]
    if isinstance(spec, dict) and isinstance(spec.get("exp"), str) and spec["exp"].startswith("Flow."):
        return flow_vars.get(spec["exp"].removeprefix("Flow."))
    raise Unsupported(f"input expression {spec!r} (the emulator evaluates Flow.<variable> and lit)")


def _seconds(spec: Any) -> float:
    lit = spec.get("lit") if isinstance(spec, dict) else None
    if isinstance(lit, dict):
        return float(lit.get("seconds", 0)) + float(lit.get("minutes", 0)) * 60 + float(lit.get("ms", 0)) / 1000
    return DEFAULT_TIMEOUT


def call_data(store, action_spec: dict[str, Any], flow_vars: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One callData: the data action's request, sent. Returns the step's record with `output`."""
    (integration_name, category), = action_spec["category"].items()
    (action_name, call), = category["dataAction"].items()
    step: dict[str, Any] = {"action": "callData", "dataAction": action_name, "integration": integration_name}
    found = integrations.find_action(store, integration_name, action_name)
    if found is None:
        return {**step, "output": "failure", "error": f"no data action {action_name!r} in {integration_name!r}"}
    integration, action = found
    inputs = {name: _value(spec, flow_vars) for name, spec in (call.get("inputs") or {}).items()}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    missing = [k for k in action["contract"]["input"]["inputSchema"].get("required", []) if k not in inputs]
    if missing:
        return {**step, "output": "failure", "error": f"required inputs not set: {missing}"}
    if integration["intendedState"] != "ENABLED":
        return {**step, "output": "failure", "error": "the integration is not enabled"}
    request = action["config"]["request"]
    try:
        url = render(request["requestUrlTemplate"], inputs)
        headers = {k: render(v, inputs) for k, v in (request.get("headers") or {}).items()}
        body = render(request.get("requestTemplate") or "", inputs)
    except TemplateError as exc:
        return {**step, "output": "failure", "error": f"template: {exc}"}
    basic = integrations.basic_credential(store, integration)
    timeout = _seconds(action_spec.get("timeout"))
    step.update(method=request["requestType"], url=url)
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, verify=tls()) as client:
            r = client.request(request["requestType"], url, content=body.encode("utf-8"), headers=headers, auth=basic)
        step["status"] = r.status_code
        r.json()  # successTemplate ${rawResult}: the answer must be JSON
        step["output"] = "success" if r.is_success else "failure"
    except httpx.TimeoutException:
        step["output"] = "timeout"
    except (httpx.HTTPError, ValueError) as exc:
        step.update(output="failure", error=type(exc).__name__)
    step["elapsedMs"] = int((time.monotonic() - started) * 1000)
    return step


def _run_actions(store, actions: list[dict[str, Any]], flow_vars: dict[str, Any], steps: list) -> dict | None:  # type: ignore[no-untyped-def]
    for entry in actions:
        (kind, spec), = entry.items()
        if kind == "endWorkflow":
            reason = spec.get("exitReason") or {}
            return {"exitReason": reason.get("lit") if isinstance(reason, dict) else None}
        if kind != "callData":
            raise Unsupported(f"action {kind!r}")
        step = call_data(store, spec, flow_vars)
        steps.append(step)
        branch = ((spec.get("outputs") or {}).get(step["output"]) or {}).get("actions") or []
        ended = _run_actions(store, branch, flow_vars, steps)
        if ended is not None:
            return ended
    return None


def run(store, flow: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Run the published workflow `flow` with the trigger's TopLevelPrimitives `data`."""
    workflow = flow["definition"]["workflow"]
    flow_vars = _inputs(workflow, data)
    start = str(workflow.get("startUpRef", ""))
    ref = start[start.find("[") + 1:-1]
    state = next((s["state"] for s in workflow.get("states") or [] if s["state"].get("refId") == ref), None)
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] = {"workflowId": flow["id"], "workflowVersion": flow["version"], "steps": steps}
    if state is None:
        return {**result, "state": "error", "error": f"startUpRef {start!r} names no state"}
    try:
        ended = _run_actions(store, state.get("actions") or [], flow_vars, steps)
    except Unsupported as exc:
        return {**result, "state": "error", "error": f"the emulator doesn't run {exc}"}
    return {**result, "state": "completed", "exitReason": (ended or {}).get("exitReason")}
