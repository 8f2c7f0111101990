"""Where the store's logical keys live in Redis: prefix, hash tags, channels.

Features name state by logical keys (``room:<id>``, ``pair:app:<appID>``,
``match:user:<sid>``). In Redis each one becomes ``<prefix>:{<tag>}...``, where the part in
braces is the Redis Cluster hash tag: keys with the same tag live in the same slot, and a
transaction (WATCH/MULTI/EXEC) or a Lua script may only touch keys of one slot. So:

* by default a key is its own tag: ``rtchub:{room:abc}``, ``rtchub:{pair:app:<uuid>}``,
  ``rtchub:{rl:match-request:<sid>}``: one room, one pair, one rate window per slot, and the
  transactions on them (a room's join and leave, a pair's join, leave, send and ack) are
  single-slot already;
* a group of keys that one transaction must change together shares a tag:
  ``match:*`` under ``{match}`` (the queue, users, rooms and counts move together in a
  pairing) and ``pair:code*`` under ``{pair:codes}`` (a code and the index of live codes).

:meth:`KeyLayout.slot_tag` lets the store tell transactions that span several tags (one
Redis serves them; a Redis Cluster would refuse them): docs/scaling.md lists them and how
each splits. Channels: one per node, one per topic, one change feed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["GROUPS", "KeyLayout"]

# (logical key prefix, the hash tag every key under it shares)
GROUPS: Final = (("match:", "match"), ("pair:code", "pair:codes"))

_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})


class KeyLayout:
    """Logical keys <-> Redis keys and the channel names of one deployment (``prefix``)."""

    def __init__(self, prefix: str = "rtchub") -> None:
        if not prefix or any(c in prefix for c in "{}*?[]"):
            raise ValueError(f"a key prefix without braces or glob characters, got {prefix!r}")
        self.prefix = prefix
        self.nodes = f"{prefix}:nodes"            # sorted set: node -> last heartbeat (ms)
        self.feed = f"{prefix}:feed"              # the change feed channel

    @staticmethod
    def slot_tag(logical: str) -> str:
        """The hash tag of a logical key."""
        for start, tag in GROUPS:
            if logical.startswith(start):
                return tag
        return logical

    def key(self, logical: str) -> str:
        """The Redis key of a logical key."""
        tag = self.slot_tag(logical)
        if tag == logical:
            return f"{self.prefix}:{{{logical}}}"
        return f"{self.prefix}:{{{tag}}}:{logical}"

    def pattern(self, logical_prefix: str) -> tuple[str, int, int]:
        """(SCAN pattern, characters to cut before, after) for keys under a logical prefix;
        the prefix must not cross a group's start (``match:`` or ``pair:code``) partly."""
        tag = self.slot_tag(logical_prefix)
        escaped = logical_prefix.translate(_GLOB_SPECIAL)
        if tag == logical_prefix and not any(logical_prefix.startswith(s) for s, _ in GROUPS):
            head = f"{self.prefix}:{{"
            return f"{head.translate(_GLOB_SPECIAL)}{escaped}*", len(head), 1
        head = f"{self.prefix}:{{{tag}}}:"
        return f"{head.translate(_GLOB_SPECIAL)}{escaped}*", len(head), 0

    def node_channel(self, node: str) -> str:
        """The channel a node reads the events addressed to its connections from."""
        return f"{self.prefix}:node:{node}"

    def topic_channel(self, topic: str) -> str:
        """The channel of a topic's broadcasts."""
        return f"{self.prefix}:topic:{topic}"

    def node_info(self, node: str) -> str:
        """The key holding a node's figures (expires with its heartbeat)."""
        return f"{self.prefix}:nodeinfo:{node}"

    def reap_lease(self, node: str) -> str:
        """The lease a node takes to sweep a lost node."""
        return f"{self.prefix}:reap:{node}"
