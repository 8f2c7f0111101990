"""The one place that chooses the backplane implementation."""

from __future__ import annotations

from rtchub.cluster.backplane import Backplane
from rtchub.cluster.memory import MemoryBackplane
from rtchub.config import Config, ConfigError

__all__ = ["create_backplane"]


def create_backplane(config: Config) -> Backplane:
    """In-memory unless ``REDIS_URL`` is set."""
    if config.redis_url:
        raise ConfigError(f"REDIS_URL={config.redis_url!r}: the Redis backplane is not "
                          "available in this version; unset REDIS_URL")
    return MemoryBackplane()
