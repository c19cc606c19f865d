"""The one door to an MQTT broker: a paho-mqtt client built from :class:`lakehouse.config.Settings`.

MQTT 5 or 3.1.1, username/password, TLS with a CA file and/or a client certificate (AWS IoT Core and
most site brokers authenticate devices by certificate). The bridge, the ``mqtt`` sink, the tests and the
benchmarks all connect through :func:`mqtt_client`, so they agree on every option.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# A persistent session outlives a disconnection by this long (MQTT 5 session expiry): a week covers a
# bridge that is down over a weekend; the broker's own limits (queue size) apply as well.
SESSION_EXPIRY_S = 7 * 24 * 3600


class MqttError(LakehouseError):
    """The broker refused us or cannot be reached; the message names the broker and the fix."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_broker(text: str | None, tls: bool = False) -> Broker:
    """``HOST:PORT`` or ``HOST`` (port 1883, 8883 with TLS); ``[::1]:1883`` for IPv6."""
    if not text:
        raise MqttError(
            "no MQTT broker given: pass --broker HOST:PORT (or set LAKEHOUSE_MQTT_BROKER / mqtt_broker "
            "in lakehouse.toml), e.g. --broker localhost:1883"
        )
    host, port = text.strip(), None
    if host.startswith("["):
        end = host.find("]")
        host, rest = host[1:end], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        raise MqttError(f"--broker '{text}' is not HOST:PORT; write e.g. localhost:1883 or broker.example.com:8883")
    return Broker(host, int(port) if port else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT))


def uses_tls(settings: Settings) -> bool:
    return bool(settings.mqtt_ca_certs or settings.mqtt_certfile or (settings.mqtt_tls or "").lower() in ("on", "1"))


class _BufferedSocket:
    """A socket that reads 256 KiB at a time and hands paho its small reads from memory.

    paho reads each packet with two or three ``recv`` calls (the type byte, the length bytes one by one,
    the rest) and one packet per pass of its loop; at thousands of small messages a second those system
    calls are most of the bridge's time. paho asks ``pending()`` before it waits in ``select`` (it does so
    for TLS sockets), so bytes held here are never left waiting.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._offset = 0

    def recv(self, size: int) -> bytes:
        if self._offset >= len(self._buffer):
            self._buffer, self._offset = self._sock.recv(262144), 0  # BlockingIOError passes through
            if not self._buffer:
                return b""  # closed by the peer
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buffer) - self._offset + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _client_class() -> type:
    import paho.mqtt.client as paho

    class Client(paho.Client):
        def _create_socket(self):  # paho's hook that opens the (TLS) socket
            return _BufferedSocket(super()._create_socket())

        def loop_read(self, max_packets: int = 1) -> paho.MQTTErrorCode:
            # paho reads one packet per pass of its loop (a select, a write pass, housekeeping each time)
            # when no QoS 2 flows are open; read what has arrived instead, up to a bound that keeps
            # writes (our acks) and keepalives going.
            for _ in range(2000):
                if self._sock is None:
                    return paho.MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = self._packet_read()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == paho.MQTTErrorCode.MQTT_ERR_AGAIN:
                    break
            return paho.MQTTErrorCode.MQTT_ERR_SUCCESS

    return Client


def mqtt_client(settings: Settings, client_id: str, *, persistent: bool, manual_ack: bool = False) -> Any:
    """A paho client (not connected yet) for ``settings``' protocol, credentials and TLS.

    ``persistent``: a session the broker keeps while we are away (3.1.1: clean session off; 5: clean
    start off and a session expiry, passed by :func:`connect_properties` at connect time).
    """
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    v5 = settings.mqtt_protocol == "5"
    client = _client_class()(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if uses_tls(settings):
        try:
            client.tls_set(
                ca_certs=settings.mqtt_ca_certs, certfile=settings.mqtt_certfile, keyfile=settings.mqtt_keyfile
            )
        except (OSError, ValueError) as exc:
            raise MqttError(
                f"TLS setup failed ({exc}); check mqtt_ca_certs={settings.mqtt_ca_certs}, "
                f"mqtt_certfile={settings.mqtt_certfile}, mqtt_keyfile={settings.mqtt_keyfile} "
                f"(PEM files readable by this user)"
            ) from exc
    return client


def connect_properties(settings: Settings, persistent: bool, receive_maximum: int | None = None) -> Any:
    """MQTT 5 CONNECT properties (None for 3.1.1): session expiry for a persistent session, and how many
    unacknowledged messages we accept in flight (the bridge acknowledges a whole file at once)."""
    if settings.mqtt_protocol != "5":
        return None
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    if persistent:
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
    if receive_maximum:
        properties.ReceiveMaximum = min(65535, receive_maximum)
    return properties


def connect(client: Any, settings: Settings, broker: Broker, *, persistent: bool, receive_maximum: int | None = None):
    """Start connecting (non-blocking: paho's loop finishes it and reconnects with backoff afterwards)."""
    from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY

    clean_start = (not persistent) if settings.mqtt_protocol == "5" else MQTT_CLEAN_START_FIRST_ONLY
    client.connect_async(
        broker.host,
        broker.port,
        keepalive=30,
        clean_start=clean_start,
        properties=connect_properties(settings, persistent, receive_maximum),
    )


def wait_published(info: Any, timeout_s: float) -> bool:
    """Wait until the broker acknowledged a QoS 1 publish (True) or ``timeout_s`` passed (False).

    paho's ``wait_for_publish`` gives up at once on a message published while disconnected (its result
    code says "not connected"), although paho keeps the message and sends it again when it reconnects:
    devices publishing through a broker outage are exactly the case to wait for. So wait for the
    acknowledgement itself.
    """
    from paho.mqtt.enums import MQTTErrorCode

    if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
        raise MqttError("the client's queue of unacknowledged messages is full (65,535 at most); publish fewer at once")
    deadline = time.monotonic() + timeout_s
    with info._condition:
        while not info._published:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            info._condition.wait(min(remaining, 0.5))
    return True
