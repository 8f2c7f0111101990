"""The state store on Redis: the same semantics as :class:`~rtchub.cluster.memory.MemoryStore`.

* ``transact``: WATCH the keys, MGET them, run the pure mutation, then MULTI, SET/DEL
  (PX for :class:`~rtchub.cluster.store.Expiring` values) and, when a followed key
  changed, PUBLISH the change on the feed channel inside the same EXEC, so the feed is
  in commit order. A conflicting write (EXEC answers nil) retries with a short jittered
  pause, at most ``MAX_ATTEMPTS`` times. The transaction returns once this node's own
  feed message came back and its followers saw it (read-your-writes for node views).
* ``count`` and ``hit``: one Lua script each, one round trip, no retries.
* ``scan``: SCAN MATCH and MGET in chunks.
* While the backplane says Redis is unreachable every call raises
  :class:`~rtchub.errors.ClusterUnavailable` at once; a connection error on a call marks
  it unreachable and raises the same.

A node publishes the changes of the prefixes it follows itself: every node runs the same
features, which follow the same prefixes (rooms, the voice directory), so every change
that any node's views need is on the feed. The backplane
(:mod:`rtchub.cluster.redis_backplane`) owns the connections' health and the subscriber,
and hands feed messages to :meth:`RedisStore.on_feed`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from rtchub.base.clock import Clock
from rtchub.cluster.codec import Codec, CodecError
from rtchub.cluster.keys import KeyLayout
from rtchub.cluster.store import Expiring, Follower, Mutation
from rtchub.errors import ClusterUnavailable, ServerError

__all__ = ["MAX_ATTEMPTS", "Health", "RedisStore"]

log = logging.getLogger("rtchub.cluster")

R = TypeVar("R")
MAX_ATTEMPTS: Final = 64
FEED_WAIT: Final = 5.0       # seconds to wait for our own feed message before going on
CONCURRENCY: Final = 64      # store calls in flight per node (each holds a connection)
SCAN_CHUNK: Final = 500
REDIS_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)

_COUNT = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(ARGV[1])
local n = v + d
if n < 0 then n = 0 end
if ARGV[2] ~= '' and d > 0 and n > tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], n)
return n
"""

_HIT = """
local n = tonumber(ARGV[2])
if n == 0 then
  local v = redis.call('GET', KEYS[1])
  if not v then return {0, 0} end
  return {tonumber(v), redis.call('PTTL', KEYS[1])}
end
local v = redis.call('INCRBY', KEYS[1], n)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {v, ttl}
"""


class Health:
    """Whether Redis is reachable, as the backplane last saw it; ``lost`` tells it."""

    def __init__(self, on_lost: Callable[[BaseException], None]) -> None:
        self.up = False
        self.dirty = False   # a call failed since this node last swept itself
        self._on_lost = on_lost

    def lost(self, exc: BaseException) -> ClusterUnavailable:
        """A call failed for want of Redis: mark it and return the error to raise."""
        if self.up:
            self.up = False
            self._on_lost(exc)
        return unavailable()

    def failed(self, exc: BaseException) -> ClusterUnavailable:
        """A store call failed: a lost connection marks Redis unreachable; a slow answer
        (a timeout, a busy pool) fails only this call: the heartbeat, which times out
        too if Redis is really gone, decides."""
        self.dirty = True   # a leave may be among the failed: sweep this node soon
        if isinstance(exc, RedisTimeoutError) or "No connection available" in str(exc):
            return unavailable()
        return self.lost(exc)


def unavailable() -> ClusterUnavailable:
    """The one refusal of cluster operations while Redis is unreachable."""
    return ClusterUnavailable("the cluster backplane (Redis) is unreachable; this needs "
                              "the cluster: retry shortly")


class RedisStore:
    """A :class:`~rtchub.cluster.store.StateStore` on Redis; see the module docstring."""

    def __init__(self, client: Redis, codec: Codec, layout: KeyLayout, node: str,
                 health: Health, clock: Clock, rng: random.Random | None = None) -> None:
        self._client = client
        self._codec = codec
        self._layout = layout
        self._node = node
        self._health = health
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._followers: list[tuple[str, Follower]] = []
        self._tokens = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._buffer: list[bytes] | None = None   # feed messages held during a resync
        # calls queue here rather than in the connection pool, where waiting has a timeout
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._count = client.register_script(_COUNT)
        self._hit = client.register_script(_HIT)
        # figures for /metrics
        self.transactions = 0
        self.conflicts = 0
        self.cross_slot = 0     # transactions a Redis Cluster would refuse (docs/scaling.md)
        self.feed_timeouts = 0

    # -- transactions --------------------------------------------------------------------

    def _check(self) -> None:
        if not self._health.up:
            raise unavailable()

    async def transact(self, keys: Sequence[str], fn: Mutation[R]) -> R:
        """Apply ``fn`` atomically (WATCH/MULTI/EXEC, retried on conflict)."""
        self._check()
        layout = self._layout
        rkeys = [layout.key(k) for k in keys]
        if len({layout.slot_tag(k) for k in keys}) > 1:
            self.cross_slot += 1
        for attempt in range(MAX_ATTEMPTS):
            token = 0
            try:
                async with self._slots, self._client.pipeline(transaction=True) as pipe:
                    await pipe.watch(*rkeys)
                    raws = await pipe.mget(rkeys)
                    values = {k: self._decode(r) for k, r in zip(keys, raws, strict=True)}
                    updates, result = fn(values)
                    if not updates:
                        return result
                    pipe.multi()  # type: ignore[no-untyped-call]
                    token = self._write(pipe, keys, updates)
                    await pipe.execute()
            except WatchError:
                self._forget(token)
                self.conflicts += 1
                # a short jittered pause: the other writer finishes, we read its result
                await self._clock.sleep(self._rng.uniform(0, 0.002 * min(attempt + 1, 10)))
                continue
            except REDIS_ERRORS as exc:
                self._forget(token)
                raise self._health.failed(exc) from None
            self.transactions += 1
            if token:
                await self._await_feed(token)
            return result
        raise ServerError("Server error: the shared state stayed contended; retry")

    def _write(self, pipe: Any, keys: Sequence[str], updates: Mapping[str, object | None]
               ) -> int:
        """Queue the writes (and the feed message); returns the feed token (0: none)."""
        encode, key_of = self._codec.encode, self._layout.key
        fed: list[tuple[str, object]] = []
        for key, update in updates.items():
            if key not in keys:
                raise ValueError(f"a mutation updated {key!r}, which it did not read")
            value, ttl = (update.value, update.ttl) if isinstance(update, Expiring) \
                else (update, None)
            if value is None:
                pipe.delete(key_of(key))
            elif ttl is None:
                pipe.set(key_of(key), encode(value))
            else:
                pipe.set(key_of(key), encode(value), px=max(1, round(ttl * 1000)))
            if self._followed(key):
                fed.append((key, value))
        if not fed:
            return 0
        token = next(self._tokens)
        self._waiting[token] = asyncio.get_running_loop().create_future()
        pipe.publish(self._layout.feed, self._codec.encode_batch(f"{self._node}#{token}", fed))
        return token

    def _followed(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix, _ in self._followers)

    def _forget(self, token: int) -> None:
        if token:
            self._waiting.pop(token, None)

    async def _await_feed(self, token: int) -> None:
        future = self._waiting.get(token)
        if future is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(future), FEED_WAIT)
        except TimeoutError:
            self.feed_timeouts += 1
            log.warning("the change feed did not echo commit %d within %gs", token, FEED_WAIT)
        finally:
            self._waiting.pop(token, None)

    def _decode(self, raw: bytes | str | None) -> object | None:
        if raw is None:
            return None
        return self._codec.decode(raw.encode() if isinstance(raw, str) else raw)

    # -- single calls --------------------------------------------------------------------

    async def get(self, key: str) -> object | None:
        """Read one value."""
        self._check()
        try:
            async with self._slots:
                raw = await self._client.get(self._layout.key(key))
        except REDIS_ERRORS as exc:
            raise self._health.failed(exc) from None
        return self._decode(raw)

    async def scan(self, prefix: str) -> dict[str, object]:
        """Every key under ``prefix`` (SCAN + MGET)."""
        self._check()
        pattern, cut, tail = self._layout.pattern(prefix)
        found: dict[str, object] = {}
        try:
            batch: list[bytes] = []
            async with self._slots:
                keys = [key async for key in self._client.scan_iter(match=pattern,
                                                                        count=1000)]
            for key in keys:
                batch.append(key)
                if len(batch) >= SCAN_CHUNK:
                    await self._fetch(batch, cut, tail, found)
                    batch = []
            if batch:
                await self._fetch(batch, cut, tail, found)
        except REDIS_ERRORS as exc:
            raise self._health.failed(exc) from None
        return found

    async def _fetch(self, keys: list[bytes], cut: int, tail: int,
                     found: dict[str, object]) -> None:
        async with self._slots:
            raws = await self._client.mget(keys)
        for key, raw in zip(keys, raws, strict=True):
            if raw is None:
                continue
            text = key.decode()
            try:
                found[text[cut:len(text) - tail]] = self._decode(raw)
            except CodecError:
                log.warning("skipping %s: not a stored record", text[:120])

    async def count(self, key: str, delta: int, ceiling: int | None = None) -> int | None:
        """An atomic counter (Lua), refusing past ``ceiling``."""
        self._check()
        try:
            async with self._slots:
                value = await self._count(keys=[self._layout.key(key)],
                                          args=[delta, "" if ceiling is None else ceiling])
        except REDIS_ERRORS as exc:
            raise self._health.failed(exc) from None
        return None if int(value) < 0 else int(value)

    async def hit(self, key: str, window: float, hits: int = 1) -> tuple[int, float]:
        """A fixed window counter (Lua): INCRBY, PEXPIRE on the first hit."""
        self._check()
        try:
            async with self._slots:
                count, ttl = await self._hit(keys=[self._layout.key(key)],
                                             args=[max(1, round(window * 1000)), hits])
        except REDIS_ERRORS as exc:
            raise self._health.failed(exc) from None
        return int(count), max(int(ttl), 0) / 1000

    # -- the change feed -----------------------------------------------------------------

    def follow(self, prefix: str, follower: Follower) -> None:
        """Report changes under ``prefix`` (from the feed; reset at every (re)connect)."""
        self._followers.append((prefix, follower))

    def on_feed(self, data: bytes) -> None:
        """A feed message from the subscriber (held back while a resync reads)."""
        if self._buffer is not None:
            self._buffer.append(data)
            return
        self._apply(data)

    def _apply(self, data: bytes) -> None:
        try:
            origin, rows = self._codec.decode_batch(data)
            changes = list(rows)
        except CodecError:
            log.exception("dropping an undecodable feed message")
            return
        for key, value in changes:
            for prefix, follower in self._followers:
                if key.startswith(prefix):
                    follower.changed(key, value)
        node, _, token = origin.partition("#")
        if node == self._node and token.isdigit():
            future = self._waiting.get(int(token))
            if future is not None and not future.done():
                future.set_result(None)

    async def resync(self) -> None:
        """Re-read everything followed (after subscribing to the feed): the feed messages
        that arrive meanwhile are applied after the reset, in order."""
        if not self._followers:
            return
        self._buffer = []
        try:
            for prefix, follower in self._followers:
                follower.reset(await self.scan(prefix))
        finally:
            held, self._buffer = self._buffer or [], None
            for data in held:
                self._apply(data)

    def disconnected(self) -> None:
        """The subscriber lost Redis: release every commit waiting for its echo."""
        self._buffer = None
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
