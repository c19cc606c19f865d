"""A local Mosquitto broker (Debian's ``mosquitto``) on a loopback port, with its own config and data folder:
for the tests, the benchmarks and trying the bridge on a laptop. Not used by the bridge itself.

Persistence is on, so the broker keeps a persistent session's subscriptions and queued QoS 1 messages
across a restart, and the in-flight and queue limits are lifted: the bridge acknowledges a whole file at
once, so the broker must let that many messages be in flight (mosquitto's default is 20).
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mosquitto:
    """``start()``, ``stop()`` (SIGTERM: the broker saves its persistence file), ``start()`` again on the
    same port and data folder; ``kill()`` for an abrupt end."""

    def __init__(self, folder: Path, port: int | None = None, *, max_queued: int = 10_000_000) -> None:
        self.folder = Path(folder)
        self.port = port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "data").mkdir(exist_ok=True)
        self.config = self.folder / "mosquitto.conf"
        self.log = self.folder / "mosquitto.log"
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    # Started as root, mosquitto drops to user "mosquitto", which cannot write our folder.
                    f"user {getpass.getuser()}",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.folder / 'data'}/",
                    "autosave_interval 300",  # saved on SIGTERM anyway; saving often stalls the broker
                    "max_inflight_messages 0",
                    f"max_queued_messages {max_queued}",
                    "max_queued_bytes 0",
                    "max_packet_size 1048576",
                    "persistent_client_expiration 1d",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> Mosquitto:
        binary = shutil.which("mosquitto") or MOSQUITTO
        if not Path(binary).exists():
            raise FileNotFoundError(
                "mosquitto is not installed; `make test` installs it as root on Debian "
                "(or: sudo apt-get install -y mosquitto)"
            )
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {self.process.stderr.read()!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.address} within {timeout_s:g} s; see {self.log}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout_s)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
