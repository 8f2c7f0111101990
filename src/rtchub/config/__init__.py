"""Configuration: the settings table, validated values, and ``load()`` (env + flags).

Everything configurable is one row of :data:`rtchub.config.settings.SETTINGS`; :func:`load`
turns environment variables and flags into a frozen :class:`Config`.
"""

from rtchub.config.model import (
    CallSettings,
    Config,
    ConfigError,
    Limits,
    ListenAddress,
    OriginPolicy,
    TurnConfig,
    load,
    parse_listen_address,
    parse_rtc_config,
)

__all__ = ["CallSettings", "Config", "ConfigError", "Limits", "ListenAddress", "OriginPolicy",
           "TurnConfig",
           "load", "parse_listen_address", "parse_rtc_config"]
