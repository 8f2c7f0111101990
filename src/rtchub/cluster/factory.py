"""The one place that chooses the backplane implementation."""

from __future__ import annotations

import secrets
import socket

from rtchub.base.clock import Clock
from rtchub.cluster.backplane import Backplane
from rtchub.cluster.codec import Codec
from rtchub.cluster.memory import MemoryBackplane
from rtchub.config import Config, ConfigError

__all__ = ["create_backplane", "new_node_id"]


def new_node_id() -> str:
    """A node ID unique to this process's life: the host name and 32 random bits (a
    restarted node is a new node; its predecessor is swept as lost)."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.")[:32]
    return f"{host or 'node'}-{secrets.token_hex(4)}"


def create_backplane(config: Config, clock: Clock, codec: Codec) -> Backplane:
    """In-memory unless ``REDIS_URL`` is set."""
    if not config.redis_url:
        return MemoryBackplane(clock)
    if not config.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={config.redis_url!r}: expected a redis://, rediss:// "
                          "or unix:// URL")
    from rtchub.cluster.redis_backplane import RedisBackplane
    return RedisBackplane(config.redis_url, codec, clock, new_node_id(),
                          node_ttl=config.cluster_node_ttl,
                          start_wait=config.cluster_start_wait)
