"""The Redis backplane: the store on Redis, pub/sub between nodes, node liveness.

What it adds to the in-memory backplane is only I/O (STYLE.md, habit 6):

* **Channels.** Each node reads ``<prefix>:node:<id>`` (events addressed to its
  connections), ``<prefix>:feed`` (the store's change feed) and ``<prefix>:topic:<t>``
  for each topic it has local subscribers of. One subscriber connection reads them all,
  so what one node publishes reaches another in the order Redis received it.
* **Publishing.** ``publish`` and ``broadcast`` never block: the event joins the outbox of
  its channel, and one writer task sends everything waiting as one pipelined batch of
  ``PUBLISH``es, one message per channel (many events each). The outbox is bounded; what
  does not fit, or arrives while Redis is unreachable, is refused (``publish`` returns
  False: the rooms relay answers ``cluster_unavailable``).
* **Echoes.** Every message carries its origin node; a node ignores its own topic
  broadcasts (the courier delivered them locally already).
* **Health.** Any Redis error marks the backplane unreachable: ``healthy`` turns False
  (``/readyz`` 503), store calls raise ``cluster_unavailable`` at once, and the
  subscriber reconnects with backoff. Once subscribed again it re-reads every followed
  prefix (missed changes) and runs every feature's sweep for this node (leaves its own
  closed connections could not write), then reports healthy.
* **Liveness**: :mod:`rtchub.cluster.membership`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rtchub.base.clock import Clock
from rtchub.base.connection import Address
from rtchub.base.tasks import TaskOwner
from rtchub.cluster.backplane import (
    ClusterView,
    NodeFigures,
    NodeSweep,
    RemoteHandler,
    TopicHandler,
)
from rtchub.cluster.codec import Codec, CodecError
from rtchub.cluster.keys import KeyLayout
from rtchub.cluster.membership import Membership
from rtchub.cluster.redis_store import CONCURRENCY, REDIS_ERRORS, Health, RedisStore
from rtchub.config import ConfigError
from rtchub.errors import ClusterUnavailable

__all__ = ["OUTBOX_LIMIT", "RedisBackplane"]

log = logging.getLogger("rtchub.cluster")

OUTBOX_LIMIT: Final = 200_000      # events waiting for the writer, over all channels
BATCH_ROWS: Final = 2_000          # events per PUBLISH at most
POOL_SIZE: Final = CONCURRENCY + 8  # Redis connections per node: the store's + ours
MAX_BACKOFF: Final = 1.0


class RedisBackplane:
    """Shared state and cross-node delivery through one Redis; see the module docstring."""

    def __init__(self, url: str, codec: Codec, clock: Clock, node_id: str, *,
                 node_ttl: float = 15.0, start_wait: float = 5.0,
                 prefix: str = "rtchub") -> None:
        self._node = node_id
        self._start_wait = start_wait
        self._codec = codec
        self._clock = clock
        self._url_for_humans = _without_password(url)
        self._layout = layout = KeyLayout(prefix)
        # a dead Redis shows as a closed connection at once; a silent one as this timeout
        io_timeout = max(0.5, min(5.0, node_ttl / 3))
        self._pool = BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=io_timeout * 2,
            socket_timeout=io_timeout, socket_connect_timeout=io_timeout,
            retry=Retry(NoBackoff(), 0))
        self._client = Redis(connection_pool=self._pool)
        self._tasks = TaskOwner("backplane")
        self._health = Health(self._lost)
        self._store = RedisStore(self._client, codec, layout, node_id, self._health, clock)
        self._membership = Membership(self._client, layout, node_id, node_ttl, self._tasks)
        self._to_conn: RemoteHandler = lambda to, event: None
        self._to_topic: TopicHandler = lambda topic, event: None
        self._local: Callable[[str], bool] = lambda conn: False
        self._node_channel = layout.node_channel(node_id).encode()
        self._feed_channel = layout.feed.encode()
        self._topics: set[str] = set()
        self._pubsub: Any = None
        self._session: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._outbox: dict[str, list[tuple[str, object]]] = {}
        self._pending = 0
        self._wake = asyncio.Event()
        self._closing = False
        # figures for /metrics
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.reconnects = 0

    # -- the protocol --------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        """This node's ID."""
        return self._node

    @property
    def store(self) -> RedisStore:
        """The Redis store."""
        return self._store

    @property
    def healthy(self) -> bool:
        """True while Redis answers."""
        return self._health.up

    def publish(self, to: Address, event: object) -> bool:
        """Queue ``event`` for a connection of another node."""
        return self._queue(self._layout.node_channel(to.node), to.conn, event)

    def broadcast(self, topic: str, event: object) -> None:
        """Queue ``event`` for every other node's subscribers of ``topic``."""
        self._queue(self._layout.topic_channel(topic), topic, event)

    def _queue(self, channel: str, to: str, event: object) -> bool:
        if not self._health.up or self._pending >= OUTBOX_LIMIT:
            self.dropped += 1
            return False
        if not self._codec.registered(type(event)):
            log.error("cannot send a %s across nodes: not registered with the codec",
                      type(event).__qualname__)
            self.dropped += 1
            return False
        rows = self._outbox.get(channel)
        if rows is None:
            rows = self._outbox[channel] = []
        rows.append((to, event))
        self._pending += 1
        self._wake.set()
        return True

    def listen(self, topic: str) -> None:
        """Subscribe to ``topic``'s channel (now, or at the next connect)."""
        if topic in self._topics:
            return
        self._topics.add(topic)
        self._change_subscription("subscribe", topic)

    def unlisten(self, topic: str) -> None:
        """Unsubscribe from ``topic``'s channel."""
        if topic not in self._topics:
            return
        self._topics.discard(topic)
        self._change_subscription("unsubscribe", topic)

    def _change_subscription(self, how: str, topic: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or self._closing:
            return  # (re)connecting subscribes to every topic in self._topics
        channel = self._layout.topic_channel(topic)

        async def change() -> None:
            with contextlib.suppress(*REDIS_ERRORS):
                await getattr(pubsub, how)(channel)

        with contextlib.suppress(RuntimeError):
            self._tasks.spawn(change(), name=f"backplane-{how}")

    def on_remote(self, to_conn: RemoteHandler, to_topic: TopicHandler,
                  local: Callable[[str], bool]) -> None:
        """Where events from other nodes go, and which local connections are open."""
        self._to_conn, self._to_topic, self._local = to_conn, to_topic, local

    def on_sweep(self, sweep: NodeSweep) -> None:
        """A feature's sweep of a lost node (and of this one after a reconnect)."""
        self._membership.sweeps.append(sweep)

    def set_figures(self, read: Callable[[], NodeFigures]) -> None:
        """This node's figures, sent with each heartbeat."""
        self._membership.set_figures(read)

    def cluster(self) -> ClusterView:
        """The live nodes as of the last heartbeat."""
        return self._membership.view

    def counters(self) -> dict[str, float]:
        """Messages, drops, reconnects, transactions and conflicts, lost nodes swept."""
        store = self._store
        return {"published": self.published, "received": self.received,
                "dropped": self.dropped, "reconnects": self.reconnects,
                "transactions": store.transactions, "conflicts": store.conflicts,
                "cross_slot": store.cross_slot, "feed_timeouts": store.feed_timeouts,
                "nodes_lost": self._membership.nodes_lost}

    @property
    def membership(self) -> Membership:
        """Heartbeats and sweeps (for metrics and tests)."""
        return self._membership

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe, read the followed state. A Redis that does not answer
        within CLUSTER_START_WAIT refuses the start (one line naming REDIS_URL); one that goes
        away later makes the node unready until it is back."""
        self._tasks.spawn(self._supervise(), name="backplane-subscriber")
        self._tasks.spawn(self._heartbeats(), name="backplane-heartbeat")
        self._tasks.spawn(self._writer(), name="backplane-writer")
        try:
            await asyncio.wait_for(self._connected.wait(), self._start_wait)
        except TimeoutError:
            await self._tasks.close()
            raise ConfigError(f"REDIS_URL={self._url_for_humans!r}: Redis does not answer "
                              f"within {self._start_wait:g} s (CLUSTER_START_WAIT); start "
                              "Redis, or fix REDIS_URL, or unset it to run one node without "
                              "Redis") from None

    async def close(self) -> None:
        """Send what is queued, sweep what this node's connections still hold (a leave
        that failed), leave the cluster, stop every task, close the pool."""
        self._closing = True
        if self._health.up:
            with contextlib.suppress(*REDIS_ERRORS, TimeoutError):
                await asyncio.wait_for(self._flush(), 2.0)
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(self._membership.run_sweeps(
                        self._node, lambda address: False), 5.0):
                    with contextlib.suppress(*REDIS_ERRORS):
                        await asyncio.wait_for(self._membership.leave(), 2.0)
        await self._tasks.close()
        with contextlib.suppress(*REDIS_ERRORS):
            await self._client.aclose()
        await self._pool.disconnect()

    # -- the subscriber ------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 0.05
        while True:
            session = self._session = self._tasks.spawn(self._subscribe(), name="pubsub")
            await asyncio.wait([session])
            self._session = None
            if self._connected.is_set():
                backoff = 0.05
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _subscribe(self) -> None:
        pubsub = self._client.pubsub()
        channels = [self._node_channel.decode(), self._feed_channel.decode(),
                    *(self._layout.topic_channel(t) for t in self._topics)]
        try:
            await pubsub.subscribe(*channels)
            waiting = len(channels)
            while waiting:
                message = await pubsub.parse_response(block=True)
                if message[0] == b"subscribe":
                    waiting -= 1
                else:
                    self._dispatch(message)
            self._pubsub = pubsub
            self._tasks.spawn(self._reconnected(), name="backplane-resync")
            while True:
                self._dispatch(await pubsub.parse_response(block=True))
        except REDIS_ERRORS as exc:
            self._pubsub = None
            self._health.lost(exc)
            self._down(exc)
        finally:
            self._pubsub = None
            with contextlib.suppress(*REDIS_ERRORS, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _reconnected(self) -> None:
        """Subscribed again: re-read followed state, sweep this node, report healthy."""
        # idle pooled connections may still point at a Redis that died: drop them
        await self._pool.disconnect(inuse_connections=False)
        self._health.up = True
        self._health.dirty = False
        try:
            await self._store.resync()
            await self._membership.beat()
            if self._connected.is_set():
                self.reconnects += 1
                await self._membership.run_sweeps(
                    self._node, lambda a: a.node == self._node and self._local(a.conn))
        except REDIS_ERRORS as exc:
            self._health.lost(exc)
            return
        except ClusterUnavailable:
            return      # lost again meanwhile: the next connection resynchronises
        except Exception:
            log.exception("resynchronising with Redis failed")
        log.info("backplane connected to Redis as node %s", self._node)
        self._connected.set()

    def _lost(self, exc: BaseException) -> None:
        """Health's callback: Redis went away (first notice)."""
        log.warning("Redis is unreachable (%s: %s): cluster operations are refused until "
                    "it is back", type(exc).__name__, exc)
        self._down(exc)
        session = self._session
        if session is not None and not session.done() and self._pubsub is not None:
            session.cancel()    # a half-open subscriber would wait forever

    def _down(self, exc: BaseException) -> None:
        self._store.disconnected()
        self._membership.disconnected()
        self._outbox.clear()
        self.dropped += self._pending
        self._pending = 0

    def _dispatch(self, message: list[Any]) -> None:
        if message[0] != b"message":
            return
        channel, data = message[1], message[2]
        self.received += 1
        if channel == self._feed_channel:
            self._store.on_feed(data)
            return
        try:
            origin, rows = self._codec.decode_batch(data)
            if channel == self._node_channel:
                node = self._node
                for conn, event in rows:
                    self._to_conn(Address(node, conn), event)
            elif origin != self._node:
                for topic, event in rows:
                    self._to_topic(topic, event)
        except CodecError:
            log.exception("dropping an undecodable message on %r", channel[:80])
        except Exception:
            log.exception("delivering a message from another node failed")

    # -- the writer and the heartbeat ----------------------------------------------------

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except REDIS_ERRORS as exc:
                self._health.lost(exc)

    async def _flush(self) -> None:
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        sent, self._pending = self._pending, 0
        pipe = self._client.pipeline(transaction=False)
        encode, node = self._codec.encode_batch, self._node
        for channel, rows in outbox.items():
            for start in range(0, len(rows), BATCH_ROWS):
                pipe.publish(channel, encode(node, rows[start:start + BATCH_ROWS]))
        try:
            await pipe.execute()
        except BaseException:
            self.dropped += sent
            raise
        self.published += sent

    async def _heartbeats(self) -> None:
        membership, health = self._membership, self._health
        while True:
            try:
                await membership.beat()
            except REDIS_ERRORS as exc:
                health.lost(exc)
            else:
                if health.dirty and health.up:
                    # a store call failed (a timeout): what it left behind (a leave that
                    # was not written) is swept like after a reconnect
                    health.dirty = False
                    await membership.run_sweeps(
                        self._node, lambda a: a.node == self._node and self._local(a.conn))
            await self._clock.sleep(membership.interval)


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (it goes into a message)."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)
