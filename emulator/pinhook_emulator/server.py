"""The server: moto's AWS behind one lock, with the clock, faults, rate limits and read lag in
front of it, and the control API beside it, on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from . import asg_lag, control, ec2_strict, groups, lifecycle, pagination, terraform_compat, warm_pools
from .deferred import Answer
from .faults import fault_response, status_line
from .read_lag import request_key
from .state import State, current

CLOCK_HEADER = "HTTP_X_PINHOOK_CLOCK"


def install_patches() -> None:
    ec2_strict.install()
    lifecycle.install()
    groups.install()
    warm_pools.install()
    pagination.install()
    asg_lag.install()
    terraform_compat.install()  # what the Terraform provider needs of moto (deploy/terraform)


def request_service(environ: dict[str, Any]) -> str:
    """The service a SigV4-signed request is for, from its credential scope
    (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`); EC2 when unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    start = authorization.find("Credential=")
    if start >= 0:
        scope = authorization[start + len("Credential=") :].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            return scope[3]
    return "ec2"


def request_action(environ: dict[str, Any], body: bytes) -> str:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    values = form.get("Action") or query.get("Action")
    if values:
        return values[0]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.rsplit(".", 1)[-1] if target else "unknown"


def apply_clock_header(st: State, environ: dict[str, Any]) -> bool:
    """`X-Pinhook-Clock: <client-id> <seconds>`: moves the manual clock by that client's own
    elapsed time. Whether the request is stamped and the clock is manual."""
    header = environ.get(CLOCK_HEADER)
    if not header:
        return False
    parts = header.split()
    if len(parts) != 2:
        raise ValueError(f"X-Pinhook-Clock must be '<client-id> <seconds>', not {header!r}")
    reading = float(parts[1])
    with st.lock:
        st.clock.observe(parts[0], reading)
        return st.clock.mode == "manual"


class Emulator:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        st = current()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            stamped = apply_clock_header(st, environ)
        except ValueError as err:
            data = json.dumps({"error": str(err)}).encode()
            start_response(
                status_line(400), [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
            )
            return [data]
        if environ.get("PATH_INFO", "").startswith("/_pinhook/"):
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            return control.handle(environ, body, query)(environ, start_response)
        return self.aws(st, environ, start_response, body, stamped)

    def aws(self, st: State, environ: dict[str, Any], start_response: Any, body: bytes, stamped: bool) -> Any:
        action = request_action(environ, body)
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        service = request_service(environ)
        if st.clock.mode == "manual" and not stamped:
            st.clock.tick_request()
        fault, delay = st.faults.pick(action, body + environ.get("QUERY_STRING", "").encode())
        latency = st.settings.latency
        if stamped:
            # The client waits on its own clock: nothing here sleeps.
            if delay > 0:
                return self.defer(
                    st, environ, start_response, body, action, form, service, fault, delay + latency
                )
            status, headers, payload = self.serve(st, environ, body, action, form, service, fault)
            if latency > 0:
                headers = [*headers, ("X-Pinhook-Delay", repr(latency))]
        else:
            if delay + latency > 0:
                time.sleep(delay + latency)  # outside the lock: a slow answer does not hold the others up
            status, headers, payload = self.serve(st, environ, body, action, form, service, fault)
        start_response(status, headers)
        return [payload]

    def defer(
        self,
        st: State,
        environ: dict[str, Any],
        start_response: Any,
        body: bytes,
        action: str,
        form: dict[str, list[str]],
        service: str,
        fault: str | None,
        delay: float,
    ) -> Any:
        """A slow request of a stamped client: applied by a timer once the delay has passed (a
        claim that lands late, even if the client gave up), its answer kept for the client."""
        kept = dict(environ)
        with st.lock:
            ticket, fire = st.deferred.defer(
                st.now() + delay, lambda: self.serve(st, kept, body, action, form, service, fault)
            )
            st.later(delay, f"deferred {action} {ticket}", fire)
        start_response(
            status_line(202),
            [("X-Pinhook-Delay", repr(delay)), ("X-Pinhook-Ticket", ticket), ("Content-Length", "0")],
        )
        return [b""]

    def serve(
        self,
        st: State,
        environ: dict[str, Any],
        body: bytes,
        action: str,
        form: dict[str, list[str]],
        service: str,
        fault: str | None,
    ) -> Answer:
        """Serves one AWS request under the lock: throttled or failed before moto, or by moto."""
        if fault is None and not st.rate_limits.take(service, action, form, st.now()):
            fault = "throttle"
        if fault is not None:
            status, payload = fault_response(service, fault)
            with st.lock:
                st.calls.count(action)
                st.calls.record(action, form, f"{status} Fault", payload)
            return (
                status_line(status),
                [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))],
                payload,
            )
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        with st.lock:
            served = time.perf_counter()
            st.calls.count(action)
            chunks = self.app(environ, capture)
            try:
                payload = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close:
                    close()
            st.calls.record(action, form, captured["status"], payload)
            headers = captured["headers"]
            if (
                st.read_lag.seconds > 0
                and service == "ec2"
                and action.startswith("Describe")
                and captured["status"].startswith("200")
            ):
                key = request_key(action, form, environ.get("QUERY_STRING", ""))
                headers, payload = st.read_lag.answer(key, headers, payload, st.now())
            st.calls.busy(action, time.perf_counter() - served)
        return captured["status"], headers, payload


def quiet_handler() -> type:
    class Handler(MotoRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if os.environ.get("PINHOOK_EMULATOR_VERBOSE"):
                super().log_request(code, size)

    return Handler


def make(port: int) -> BaseWSGIServer:
    """The emulator's server on 127.0.0.1 (port 0 picks a free one), patches installed and the
    clock's timer thread running; serve with `serve_forever()`."""
    install_patches()
    app = Emulator(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=quiet_handler())
    current().clock.start()
    return server


def watch_parent(pid: int, server: Any) -> None:
    """Stop serving when the process that started the emulator is gone."""

    def loop() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                server.shutdown()
                return
            except PermissionError:
                pass

    threading.Thread(target=loop, daemon=True).start()
