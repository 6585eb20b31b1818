"""`python -m pinhook_emulator`: the emulator on 127.0.0.1, until stopped by its PID or until the
process that started it exits (`--parent-pid`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from . import server
from .state import Settings, current


def main(argv: list[str]) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m pinhook_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5055, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port here once serving")
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    parser.add_argument("--attach-delay", type=float, default=defaults.attach_delay)
    parser.add_argument("--detach-delay", type=float, default=defaults.detach_delay)
    parser.add_argument(
        "--boot-delay", type=float, default=0.0, help="seconds a new group instance stays pending"
    )
    parser.add_argument(
        "--read-lag", type=float, default=0.0, help="seconds EC2's describes may lag its writes"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every AWS request")
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="throttle as AWS does per account (EC2's token buckets, an Auto Scaling rate)",
    )
    parser.add_argument(
        "--clock",
        choices=("real", "manual"),
        default="real",
        help="real: wall time; manual: time moves only when the tests move it",
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=0.1,
        help="manual clock: seconds each AWS request without a clock header adds",
    )
    args = parser.parse_args(argv)
    st = current()
    st.settings.attach_delay = args.attach_delay
    st.settings.detach_delay = args.detach_delay
    st.settings.boot_delay = args.boot_delay
    st.settings.latency = args.latency
    st.rate_limits.configure({"enabled": args.rate_limits})
    st.read_lag.configure(args.read_lag, "random")
    st.clock.configure(args.clock, args.tick)

    httpd = server.make(args.port)
    port = httpd.server_address[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    if args.parent_pid:
        server.watch_parent(args.parent_pid, httpd)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print(f"pinhook emulator listening on http://127.0.0.1:{port} ({args.clock} clock)", flush=True)
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
