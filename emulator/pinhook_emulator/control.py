"""The control API under /_pinhook/, for demos and tests: lifecycle actions and the events AWS
would send, claim races on demand, faults, rate limits, settings, the clock, deferred answers,
EC2 state-change events. JSON in and out; an unknown route is a 404, a bad body a 400."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from .faults import status_line
from .state import State, current

Handler = Callable[[State, dict[str, str], dict[str, Any], dict[str, Any]], Response]
HANDLERS: dict[str, Handler] = {}
RULES: list[Rule] = []


def route(path: str, methods: list[str] | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[fn.__name__] = fn
        RULES.append(Rule(f"/_pinhook/{path}", methods=methods, endpoint=fn.__name__))
        return fn

    return register


def reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status_line(status), content_type="application/json", headers=headers
    )


# --------------------------------------------------------------------------------------------
# Routes


@route("health")
def health(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, {"status": "ok"})


@route("lifecycle-actions", ["GET"])
def lifecycle_actions(
    st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]
) -> Response:
    actions = [
        a.describe()
        for a in st.lifecycle.actions
        if (query.get("all") == "1" or a.pending)
        and (not query.get("group") or a.group_name == query["group"])
        and (not query.get("instance") or a.instance_id == query["instance"])
    ]
    return reply(200, {"actions": actions})


@route("claimers", ["POST"])
def arm_claimers(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    victim = body.get("instance_id")
    winners = body.get("by_instance_ids") or ([body["by_instance_id"]] if body.get("by_instance_id") else [])
    if not victim or not winners:
        return reply(400, {"error": "need instance_id and by_instance_id(s)"})
    st.claimers.arm(victim, winners)
    return reply(200, {"armed": {"victim": victim, "winners": winners}})


@route("claimers", ["GET"])
def claimers(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, {"fired": st.claimers.fired, "armed": st.claimers.rules})


@route("calls", ["GET"])
def calls(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, st.calls.view())


@route("requests", ["GET"])
def requests(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, {"requests": st.calls.matching(query)})


@route("rate-limits", ["POST"])
def set_rate_limits(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    st.rate_limits.configure(body, st.now())
    return reply(200, st.rate_limits.view())


@route("rate-limits", ["GET"])
def rate_limits(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, st.rate_limits.view())


@route("faults", ["POST"])
def set_faults(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    st.faults.configure(body)
    return reply(200, st.faults.stats())


@route("faults", ["GET"])
def faults(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, st.faults.stats())


@route("settings", ["POST"])
def set_settings(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    apply_settings(st, body)
    return reply(200, settings_view(st))


@route("settings", ["GET"])
def settings(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, settings_view(st))


@route("sns-records", ["GET"])
def sns_records(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, {"records": st.notifications.sns_records.get(query.get("topic", ""), [])})


@route("adopt", ["POST"])
def adopt_route(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, adopt(st, body))


@route("ec2-events", ["GET"])
def ec2_events(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, st.ec2_events.view(query.get("instance") or None, int(query.get("since") or 0)))


@route("clock", ["GET"])
def clock(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    return reply(200, st.clock.view())


@route("clock", ["POST"])
def set_clock(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    unknown = set(body) - {"mode", "tick"}
    if unknown:
        raise ValueError(f"unknown clock settings {sorted(unknown)}")
    st.clock.configure(body.get("mode"), body.get("tick"))
    return reply(200, st.clock.view())


@route("clock/advance", ["POST"])
def advance(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    fired = st.clock.advance(float(body.get("seconds", 0.0)))
    return reply(200, {"now": st.now(), "fired": fired})


@route("reset", ["POST"])
def reset(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    """A fresh account, for an emulator a test kit reuses: see `State.reset`."""
    st.reset()
    return reply(200, {"reset": True, "now": st.now()})


@route("deferred/<ticket>", ["GET"])
def deferred(st: State, query: dict[str, str], body: dict[str, Any], args: dict[str, Any]) -> Response:
    ticket = args["ticket"]
    entry = st.deferred.get(ticket)
    if entry is None:
        return reply(404, {"error": f"no deferred request {ticket}"})
    if entry["answer"] is None:
        st.clock.fire_due()
    if entry["answer"] is None:
        # Collected early: the client waits the rest and asks again.
        remaining = max(0.0, entry["due"] - st.now())
        return Response(
            b"",
            status=status_line(202),
            headers={"X-Pinhook-Delay": repr(remaining), "X-Pinhook-Ticket": ticket},
        )
    status, headers, payload = entry["answer"]
    return Response(payload, status=status, headers=headers)


URLS = Map(RULES, strict_slashes=False)


# --------------------------------------------------------------------------------------------
# Settings and adoption

SETTING_KEYS = {
    "attach_delay",
    "detach_delay",
    "boot_delay",
    "group",
    "plain_boot_delay",
    "read_lag",
    "lag_mode",
    "lag_seed",
    "latency",
    "asg_lag",
    "asg_lag_unlisted",
    "page_size",
    "unpaginated_limit",
}


def apply_settings(st: State, body: dict[str, Any]) -> None:
    """POST /_pinhook/settings: delays of the asynchronous state changes, the boot delays (for
    every group, one group with "group", or instances of no group), the read lags, pagination."""
    unknown = set(body) - SETTING_KEYS
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    settings = st.settings
    for key in ("attach_delay", "detach_delay", "latency", "plain_boot_delay", "asg_lag"):
        if key in body and float(body[key]) < 0:
            raise ValueError(f"{key} must be >= 0")
    for key in ("page_size", "unpaginated_limit"):
        if key in body and (not isinstance(body[key], int) or body[key] < 0):
            raise ValueError(f"{key} must be a whole number >= 0")
    for key in ("attach_delay", "detach_delay", "latency", "plain_boot_delay", "asg_lag"):
        if key in body:
            setattr(settings, key, float(body[key]))
    for key in ("page_size", "unpaginated_limit"):
        if key in body:
            setattr(settings, key, int(body[key]))
    if "asg_lag_unlisted" in body:
        settings.asg_lag_unlisted = bool(body["asg_lag_unlisted"])
    if "boot_delay" in body:
        delay = float(body["boot_delay"])
        if body.get("group"):
            settings.group_boot_delays[str(body["group"])] = delay
        else:
            settings.boot_delay = delay
    if "read_lag" in body:
        st.read_lag.configure(
            float(body["read_lag"]), str(body.get("lag_mode", "random")), body.get("lag_seed")
        )


def settings_view(st: State) -> dict[str, Any]:
    settings = st.settings
    return {
        "attach_delay": settings.attach_delay,
        "detach_delay": settings.detach_delay,
        "latency": settings.latency,
        "boot_delay": settings.boot_delay,
        "group_boot_delays": dict(settings.group_boot_delays),
        "plain_boot_delay": settings.plain_boot_delay,
        "read_lag": st.read_lag.seconds,
        "lag_mode": st.read_lag.mode,
        "stale_answers": st.read_lag.stale_answers,
        "asg_lag": settings.asg_lag,
        "asg_lag_unlisted": settings.asg_lag_unlisted,
        "asg_stale_answers": st.asg_history.stale_answers,
        "page_size": settings.page_size,
        "unpaginated_limit": settings.unpaginated_limit,
    }


def adopt(st: State, body: dict[str, Any]) -> dict[str, Any]:
    """POST /_pinhook/adopt: gives an instance the id a sample event names, and its pending
    lifecycle actions the event's token, so that a replayed sample acts on a real instance
    (emulator/seed.py). {"instance_id", "as", "tokens": {hook: token}, "region"}."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][body.get("region") or "us-east-1"]
    current_id, wanted = str(body["instance_id"]), str(body.get("as") or body["instance_id"])
    instance = backend.get_instance(current_id)
    if wanted != current_id:
        try:
            backend.get_instance(wanted)
        except EC2ClientError:
            pass
        else:
            raise ValueError(f"an instance {wanted} exists already")
        instance.id = wanted
        if current_id in backend.tags:
            backend.tags[wanted] = backend.tags.pop(current_id)
        for action in st.lifecycle.actions:
            if action.instance_id == current_id:
                action.instance_id = wanted
        st.ec2_events.renamed(current_id, wanted)
        group = getattr(instance, "autoscaling_group", None)
        if group is not None:
            for state in group.instance_states + st.warm_pool(group.name):
                if state.instance is instance:
                    state.instance_id = wanted
    adopted = {}
    for hook, token in (body.get("tokens") or {}).items():
        action = next(
            (
                a
                for a in st.lifecycle.actions
                if a.pending and a.instance_id == wanted and a.hook_name == hook
            ),
            None,
        )
        if action is None:
            raise ValueError(f"{wanted} waits on no lifecycle action of hook {hook}")
        action.token = str(token)
        adopted[hook] = action.describe()
    return {"instance_id": wanted, "actions": adopted}


# --------------------------------------------------------------------------------------------
# Dispatch


def handle(environ: dict[str, Any], raw: bytes, query: dict[str, str]) -> Response:
    """Serves one control request (its clock header already applied), under the lock."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return reply(400, {"error": "the body is not JSON"})
    if not isinstance(body, dict):
        return reply(400, {"error": "the body must be a JSON object"})
    try:
        endpoint, args = URLS.bind_to_environ(environ).match()
    except HTTPException:
        return reply(404, {"error": f"no control route {method} {path}"})
    st = current()
    with st.lock:
        try:
            return HANDLERS[endpoint](st, query, body, args)
        except (ValueError, TypeError, KeyError, IndexError) as err:
            return reply(400, {"error": str(err)})
