"""`python -m pinhook_emulator` as the tests and scripts start it: a port file, the command-line
settings, and a stop by PID."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

EMULATOR_DIR = pathlib.Path(__file__).resolve().parent.parent


def test_the_module_serves_on_its_port_file_with_its_command_line_settings(tmp_path: pathlib.Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pinhook_emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--parent-pid",
            str(os.getpid()),
            "--attach-delay",
            "1.5",
            "--clock",
            "manual",
            "--tick",
            "0.25",
        ],
        cwd=EMULATOR_DIR,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert process.poll() is None, "the emulator exited at start-up"
            assert time.monotonic() < deadline, "the emulator did not start within 60 s"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text().strip()}/_pinhook"

        def get(route: str) -> dict:
            with urllib.request.urlopen(f"{url}/{route}", timeout=10) as response:
                return json.loads(response.read())

        assert get("health") == {"status": "ok"}
        clock = get("clock")
        assert (clock["mode"], clock["tick"]) == ("manual", 0.25)
        assert get("settings")["attach_delay"] == 1.5
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode is not None


def test_a_reset_leaves_a_fresh_account_on_the_same_clock(tmp_path: pathlib.Path) -> None:
    import boto3

    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            *["-m", "pinhook_emulator", "--port", "0", "--port-file", str(port_file)],
            *["--parent-pid", str(os.getpid()), "--clock", "manual"],
        ],
        cwd=EMULATOR_DIR,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert process.poll() is None, "the emulator exited at start-up"
            assert time.monotonic() < deadline, "the emulator did not start within 60 s"
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}"

        def call(method: str, route: str, body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{endpoint}/_pinhook/{route}", data=data, method=method)
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
        ec2.create_network_interface(SubnetId=subnet["Subnet"]["SubnetId"])
        call("POST", "settings", {"attach_delay": 3.0, "read_lag": 1.0})
        call("POST", "faults", {"rate": 0.5})
        call("POST", "clock/advance", {"seconds": 10})
        before = call("GET", "clock")["now"]

        after = call("POST", "reset")

        assert after["reset"] is True and after["now"] >= before
        assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []
        assert all(v["VpcId"] != vpc for v in ec2.describe_vpcs()["Vpcs"])
        settings = call("GET", "settings")
        assert (settings["attach_delay"], settings["read_lag"]) == (0.2, 0.0)
        assert call("GET", "faults")["injected_total"] == 0
        assert call("GET", "clock")["mode"] == "manual"
    finally:
        process.terminate()
        process.wait(timeout=10)
