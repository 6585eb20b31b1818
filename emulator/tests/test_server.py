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
