"""Logging what clients get wrong: one short line at INFO, rate limited, never a traceback.

The libraries rtchub serves through log a client's malformed input as if the server had
failed: engine.io logs every undecodable packet with ``logger.exception`` (a 30-line
traceback at ERROR), aiohttp's server every malformed request head or reset body. 5,000
bad packets made 6.8 MB of log at ``LOG_LEVEL=warning``. Those libraries accept a logger
object; :class:`FaultLog` is the one they get.

A record is the client's fault when its exception is a reset or an HTTP parse error, or a
ValueError-like error raised inside a library's parser (:func:`is_client_fault`); the same
error raised in rtchub's own code is a bug and stays an ERROR with its traceback.
Client faults become one line at INFO (``client_fault``: what the library said, the
exception's type and first line); at most ``burst`` of them per ``period`` seconds are
written, and the next line written says how many were left out. Errors that are not client
faults keep their traceback, under a bound of their own, so even a flood that finds a bug
cannot fill the disk.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = ["FaultLog", "is_client_fault"]

_RTCHUB_DIR: Final = str(Path(__file__).resolve().parent.parent)
# what a client that goes away raises, wherever it surfaces (not OSError in general:
# EMFILE is the server's problem)
_GONE_TYPES: Final[tuple[type[BaseException], ...]] = (ConnectionError, EOFError)
_GONE_NAMES: Final = frozenset({
    "HttpProcessingError", "BadHttpMessage", "BadStatusLine", "LineTooLong",
    "InvalidHeader", "TransferEncodingError", "ContentLengthError", "PayloadEncodingError",
    "ClientPayloadError", "WebSocketError", "ClientConnectionResetError"})
# what malformed input raises inside a library's parser
_PARSE_TYPES: Final[tuple[type[BaseException], ...]] = (
    ValueError, IndexError, KeyError, TypeError, UnicodeError)
_MAX_TEXT: Final = 160

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _raised_in_rtchub(tb: TracebackType | None) -> bool:
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(_RTCHUB_DIR)


def is_client_fault(exc: BaseException) -> bool:
    """True when ``exc`` is the client's doing: a reset, an HTTP parse error (wherever it
    surfaces), or a ValueError-like error raised inside a library's parser (not in
    rtchub's own code: that would be a bug of rtchub's)."""
    if isinstance(exc, _GONE_TYPES) or {c.__name__ for c in type(exc).__mro__} & _GONE_NAMES:
        return True
    return isinstance(exc, _PARSE_TYPES) and not _raised_in_rtchub(exc.__traceback__)


class _Bucket:
    """At most ``burst`` lines per ``period``; counts what it refused."""

    __slots__ = ("burst", "dropped", "period", "start", "used")

    def __init__(self, burst: int, period: float) -> None:
        self.burst = burst
        self.period = period
        self.start = float("-inf")
        self.used = 0
        self.dropped = 0

    def take(self, now: float) -> int | None:
        """None when over the bound, else how many lines were left out before this one."""
        if now - self.start >= self.period:
            self.start, self.used = now, 0
        if self.used >= self.burst:
            self.dropped += 1
            return None
        self.used += 1
        dropped, self.dropped = self.dropped, 0
        return dropped


class FaultLog:
    """A logger-like object for libraries: client faults as rate-limited INFO lines.

    ``errors_are_faults``: the library logs only client conditions with ``error()`` or
    ``warning()`` without an exception (engine.io's "Invalid session", "unsupported
    version", "Method not supported"), so those are client faults too.
    ``clock`` gives seconds (monotonic) for the rate bound.
    """

    def __init__(self, target: logging.Logger, clock: Callable[[], float], *,
                 burst: int = 10, period: float = 10.0, errors_are_faults: bool = False
                 ) -> None:
        self._target = target
        self._clock = clock
        self._faults = _Bucket(burst, period)
        self._errors = _Bucket(burst, period)
        self._errors_are_faults = errors_are_faults
        self.faults = 0     # client faults seen (written or not)
        self.errors = 0     # other errors seen

    # -- the logging.Logger surface libraries call ---------------------------------------

    @property
    def level(self) -> int:
        """The target's level (engine.io reads it)."""
        return self._target.level

    def setLevel(self, level: int) -> None:
        """Ignored: rtchub's logging configuration decides."""

    def isEnabledFor(self, level: int) -> bool:
        """Whether the target would write at ``level``."""
        return self._target.isEnabledFor(level)

    def getEffectiveLevel(self) -> int:
        """The target's effective level."""
        return self._target.getEffectiveLevel()

    def hasHandlers(self) -> bool:
        """Always True: the library must not add a handler of its own."""
        return True

    def addHandler(self, handler: logging.Handler) -> None:
        """Ignored: rtchub's logging configuration decides where lines go."""

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        """Passed through."""
        if self._target.isEnabledFor(logging.DEBUG):
            self._target.debug(msg, *args, **_plain(kw))

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        """Passed through at DEBUG: libraries narrate every event at INFO (python-socketio
        and engine.io several lines per event, so the level is tested first)."""
        if self._target.isEnabledFor(logging.DEBUG):
            self._target.debug(msg, *args, **_plain(kw))

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        """A client fault or passed through; see the class docstring."""
        self._record(logging.WARNING, msg, args, kw, fault_without_exc=self._errors_are_faults)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        """A client fault or an error; see the class docstring."""
        self._record(logging.ERROR, msg, args, kw, fault_without_exc=self._errors_are_faults)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        """Like ``error`` with the exception being handled."""
        kw.setdefault("exc_info", True)
        self._record(logging.ERROR, msg, args, kw, fault_without_exc=False)

    def critical(self, msg: str, *args: Any, **kw: Any) -> None:
        """Passed through."""
        self._target.critical(msg, *args, **kw)

    def log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        """Routed by level."""
        if level >= logging.ERROR:
            self.error(msg, *args, **kw)
        elif level >= logging.WARNING:
            self.warning(msg, *args, **kw)
        else:
            self._target.debug(msg, *args, **_plain(kw))

    # -- the decision --------------------------------------------------------------------

    def _record(self, level: int, msg: str, args: tuple[Any, ...], kw: dict[str, Any], *,
                fault_without_exc: bool) -> None:
        info = _exc_info(kw.get("exc_info"))
        now = self._clock()
        fault = is_client_fault(info[1]) if info is not None else fault_without_exc
        if fault:
            self.faults += 1
            dropped = self._faults.take(now)
            if dropped is None or not self._target.isEnabledFor(logging.INFO):
                return
            text = _render(msg, args)
            if info is not None:
                text += f": {info[0].__name__}: {_first_line(info[1])}"
            extra = {"client_fault": True, **({"suppressed": dropped} if dropped else {})}
            self._target.info(text, extra=extra)
            return
        if info is None and level < logging.ERROR:
            self._target.log(level, msg, *args, **_plain(kw))
            return
        self.errors += 1
        dropped = self._errors.take(now)
        if dropped is None:
            return
        more: dict[str, object] | None = {"suppressed": dropped} if dropped else None
        self._target.log(level, msg, *args, exc_info=info, extra=more)


def _exc_info(value: object) -> ExcInfo | None:
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return (value[0], value[1], value[2])
    kind, exc, tb = sys.exc_info()
    if kind is None or exc is None:
        return None
    return (kind, exc, tb)


def _plain(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k in ("exc_info", "extra", "stack_info")}


def _render(msg: str, args: tuple[Any, ...]) -> str:
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        text = str(msg)
    return text[:_MAX_TEXT]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    return text[:_MAX_TEXT]
