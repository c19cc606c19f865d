"""How a long-running command stops: SIGTERM or Ctrl-C asks it to finish what it is doing, a second one
interrupts at once. One mechanism for the schedule, the stream and the MQTT bridge."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


def stop_on_signals(stop: threading.Event, echo: Callable[[str], None], who: str, then: str) -> dict[int, Any]:
    """SIGTERM / SIGINT set ``stop`` and say ``"<who>: <SIGNAL>: <then>"``; once ``stop`` is set, another one
    raises KeyboardInterrupt. Returns the handlers it replaced (see :func:`restore_signals`)."""

    def handler(signum, _frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        echo(f"{who}: {signal.Signals(signum).name}: {then}")
        stop.set()

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)
    return previous


def restore_signals(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`stop_on_signals` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
