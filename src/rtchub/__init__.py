"""rtchub: a self-hosted WebRTC server.

The public surface is small: build a :class:`Config`, then either serve it
(``create_app`` / ``build_server``) or drive a :class:`Hub` from Python.
Every error rtchub reports is a subclass of :class:`errors.RtcHubError`.

The names below load on first use, so ``rtchub send``/``receive`` (which
import ``rtchub.client``) do not pay for importing the whole server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtchub import errors
    from rtchub.app import build_server, create_app
    from rtchub.config import Config, ConfigError, Limits, load
    from rtchub.hub import Hub

__all__ = ["Config", "ConfigError", "Hub", "Limits", "build_server", "create_app", "errors",
           "load"]
__version__ = "0.1.0"

_HOMES = {"errors": "rtchub.errors", "build_server": "rtchub.app", "create_app": "rtchub.app",
          "Config": "rtchub.config", "ConfigError": "rtchub.config",
          "Limits": "rtchub.config", "load": "rtchub.config", "Hub": "rtchub.hub"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rtchub' has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if home == f"rtchub.{name}" else getattr(module, name)
    globals()[name] = value
    return value
