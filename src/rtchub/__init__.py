"""rtchub: a self-hosted WebRTC server.

The public surface is small: build a :class:`Config`, then either serve it
(``create_app`` / ``build_server``) or drive a :class:`Hub` from Python.
Every error rtchub reports is a subclass of :class:`errors.RtcHubError`.
"""

from rtchub import errors
from rtchub.app import build_server, create_app
from rtchub.config import Config, ConfigError, Limits, load
from rtchub.hub import Hub

__all__ = ["Config", "ConfigError", "Hub", "Limits", "build_server", "create_app", "errors",
           "load"]
__version__ = "0.1.0"
