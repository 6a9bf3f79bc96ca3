"""The virtual clock the engines share.

AWS makes a learner wait (alarm periods, lifecycle ages, Firehose buffer intervals); locally a lab
fast-forwards instead. Virtual time = real UTC time + an offset that only ``advance`` increases, so
it never runs backwards. Engines subscribe with ``on_tick``: they are called after every advance
and, from the server's ticker thread, every few real seconds, so real waiting works too.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

_lock = threading.RLock()
_offset = timedelta(0)
_listeners: list[Callable[[datetime], None]] = []


def now() -> datetime:
    """Current virtual time (timezone-aware UTC)."""
    return datetime.now(timezone.utc) + _offset


_jump = 0
_advancing = False


def offset() -> timedelta:
    return _offset


def on_tick(callback: Callable[[datetime], None]) -> Callable[[datetime], None]:
    """Register ``callback(now)``; engines use it to apply what became due. Usable as a decorator."""
    with _lock:
        if callback not in _listeners:
            _listeners.append(callback)
    return callback


def jump() -> int:
    """Which clock move this is: one number per ``advance`` (all its steps) or per lone ``tick``.
    Engines use it to bound the work one long jump can cause."""
    return _jump


def tick() -> datetime:
    """Run every listener once at the current virtual time; errors in one do not stop the others."""
    global _jump
    with _lock:
        if not _advancing:
            _jump += 1
        current = now()
        for callback in list(_listeners):
            try:
                callback(current)
            except Exception as exc:  # an engine bug must not kill the clock
                import logging

                logging.getLogger("labkit.clock").exception("clock listener %r failed: %s", callback, exc)
        return current


def advance(seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0,
            step: timedelta | None = None) -> datetime:
    """Move virtual time forward and let engines catch up.

    Time is advanced in steps (default: 1 minute up to 2 hours, else 1 hour) so that engines that
    work per period (alarm evaluation, buffer intervals) see every boundary on the way.
    """
    global _offset
    total = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    if total < timedelta(0):
        raise ValueError("the virtual clock only moves forward")
    if step is None:
        step = timedelta(minutes=1) if total <= timedelta(hours=2) else timedelta(hours=1)
    global _advancing, _jump
    with _lock:
        _jump += 1
        _advancing = True
        try:
            remaining = total
            while remaining > timedelta(0):
                delta = min(step, remaining)
                _offset += delta
                remaining -= delta
                tick()
        finally:
            _advancing = False
        return now()


def reset() -> None:
    """Back to real time (used by the server's reset)."""
    global _offset
    with _lock:
        _offset = timedelta(0)
