"""The pairing service: codes, pairs and mailboxes over the backplane's store.

:class:`PairService` applies the pure rules of :mod:`rtchub.features.pairing.rules`
through :meth:`~rtchub.cluster.store.StateStore.transact`, keeps the counters the
metrics endpoint reads, delivers frames to the connected side of a pair, and
runs the janitor that sweeps expired codes and pairs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rtchub.base.clock import Clock
from rtchub.base.connection import Address
from rtchub.cluster.courier import Delivery
from rtchub.cluster.store import Expiring, StateStore
from rtchub.errors import ClusterUnavailable, CodeGone, CodesExhausted, PeerNotFound, RateLimited
from rtchub.features.pairing import rules
from rtchub.features.pairing.events import PairComplete, PairMail, PairRelay, PeerLeft
from rtchub.features.pairing.rules import CodeEntry, CodeIndex, Mail, Pair, Side

__all__ = ["Minted", "PairService", "PairSettings"]

log = logging.getLogger("rtchub.pairing")

_MINT_ATTEMPTS = 8
_MAX_TELEMETRY_LABELS = 64
_REDEEM_WINDOW = 60.0
Alive = Callable[[Address], bool]


def _stored(pair: Pair | None, now: float) -> object | None:
    """A pair as the store keeps it: nobody connected, it expires with the pair (in Redis,
    as the key's expiry), so a mailbox outlives every node but not its TTL."""
    if pair is None or pair.conns != (None, None):
        return pair
    return Expiring(pair, max(pair.expires_at - now, 0.001))


@dataclass(frozen=True, slots=True)
class PairSettings:
    """The pairing limits (from :class:`~rtchub.config.Limits`)."""

    ttl: float = 600.0
    code_digits: int = 4
    mailbox_size: int = 256
    redeem_failures_per_min: int = 20


@dataclass(frozen=True, slots=True)
class Minted:
    """A fresh code, its appID and when it expires (hub clock seconds)."""

    code: str
    app_id: str
    expires_at: float


def _new_app_id() -> str:
    return str(uuid.uuid4())


class PairService:
    """Pairing: rules through the store, events to the sides through the courier."""

    def __init__(self, store: StateStore, courier: Delivery, settings: PairSettings,
                 clock: Clock, *, rng: random.Random | None = None,
                 new_app_id: Callable[[], str] = _new_app_id,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self._courier = courier
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self._rng = rng if rng is not None else random.SystemRandom()
        self._new_app_id = new_app_id
        self.sides_connected = 0
        # counters and gauges read at scrape time (this node's view)
        self.codes: Counter[str] = Counter()
        self.relayed: Counter[str] = Counter()
        self.telemetry: Counter[str] = Counter()
        self.depths: dict[str, int] = {}  # appID -> messages waiting in both inboxes
        self.swept = asyncio.Event()  # set after each janitor sweep (tests await it)

    # -- codes ---------------------------------------------------------------------------

    def wall_time(self, at: float) -> float:
        """A hub-clock instant as a Unix timestamp."""
        return self.wall() + (at - self.clock())

    async def mint(self) -> Minted:
        """Mint a code bound to a new pair; :class:`CodesExhausted` when all are live."""
        settings = self.settings
        for _ in range(_MINT_ATTEMPTS):
            now = self.clock()
            index = await self.store.get(rules.CODES_KEY)
            assert index is None or isinstance(index, CodeIndex)
            try:
                code = rules.choose_code(index or CodeIndex(), now, settings.code_digits,
                                         self._rng)
            except CodesExhausted:
                self.codes["exhausted"] += 1
                raise
            app_id = self._new_app_id()
            keys = [rules.CODES_KEY, rules.code_key(code), rules.app_key(app_id),
                    rules.APPS_KEY]

            def apply(v: Mapping[str, object | None], code: str = code, app_id: str = app_id,
                      now: float = now) -> tuple[dict[str, object | None], Minted]:
                idx = v[rules.CODES_KEY]
                assert idx is None or isinstance(idx, CodeIndex)
                new_index, entry, pair = rules.mint(idx, code, app_id, now, settings.ttl)
                apps = v[rules.APPS_KEY]
                assert apps is None or isinstance(apps, frozenset)
                return ({rules.CODES_KEY: new_index,
                         rules.code_key(code): Expiring(entry, settings.ttl),
                         rules.app_key(app_id): _stored(pair, now),
                         rules.APPS_KEY: (apps or frozenset()) | {app_id}},
                        Minted(code, app_id, entry.expires_at))

            try:
                minted = await self.store.transact(keys, apply)
            except CodesExhausted:
                continue  # another node took the code between the read and the write
            self.codes["minted"] += 1
            self.depths[minted.app_id] = 0
            return minted
        raise CodesExhausted("could not reserve a pairing code; retry", 1.0)

    async def redeem(self, code: str, remote: str) -> CodeEntry:
        """Consume ``code`` once. Failed attempts count against ``remote``'s window (in
        the store: one window for the whole cluster)."""
        now = self.clock()
        limit = self.settings.redeem_failures_per_min
        if limit > 0:
            failures, left = await self.store.hit(self._failure_key(remote), _REDEEM_WINDOW,
                                                  0)
            if failures >= limit:
                self.codes["rate_limited"] += 1
                raise RateLimited(f"too many failed redeems from {remote}", max(left, 0.001))
        key = rules.code_key(code)

        def apply(v: Mapping[str, object | None]) -> tuple[dict[str, object | None], CodeEntry]:
            entry, idx = v[key], v[rules.CODES_KEY]
            assert entry is None or isinstance(entry, CodeEntry)
            assert idx is None or isinstance(idx, CodeIndex)
            new_index, found = rules.redeem(entry, idx, code, now)
            return {key: None, rules.CODES_KEY: new_index}, found

        try:
            entry = await self.store.transact([key, rules.CODES_KEY], apply)
        except CodeGone:
            self.codes["gone"] += 1
            await self.fail_redeem(remote)
            raise
        self.codes["redeemed"] += 1
        return entry

    async def fail_redeem(self, remote: str) -> None:
        """Count a failed or malformed redeem against ``remote``'s window."""
        if self.settings.redeem_failures_per_min > 0:
            await self.store.hit(self._failure_key(remote), _REDEEM_WINDOW)

    @staticmethod
    def _failure_key(remote: str) -> str:
        return f"rl:pair-redeem:{remote}"

    # -- pairs ---------------------------------------------------------------------------

    async def _update(self, app_id: str, fn: Callable[[Pair | None], tuple[Pair | None, object]]
                      ) -> tuple[Pair | None, object]:
        key = rules.app_key(app_id)

        now = self.clock()

        def apply(v: Mapping[str, object | None]
                  ) -> tuple[dict[str, object | None], tuple[Pair | None, object]]:
            pair = v[key]
            assert pair is None or isinstance(pair, Pair)
            new, extra = fn(pair)
            return ({key: _stored(new, now)} if new is not pair else {}), (new, extra)

        pair, extra = await self.store.transact([key], apply)
        if pair is not None:
            self.depths[app_id] = len(pair.inboxes[0].items) + len(pair.inboxes[1].items)
        return pair, extra

    async def join(self, app_id: str, side: Side, addr: Address) -> Pair:
        """Connect ``side``; tells both sides ``room_full`` when the pair is complete."""
        now = self.clock()
        pair, _ = await self._update(app_id, lambda p: (
            rules.join(p, app_id, side, addr, now, self.settings.ttl), None))
        assert pair is not None
        self.sides_connected += 1
        other = pair.conn(side.other)
        if other is not None:
            self._courier.deliver(other, PairComplete())
            self._courier.deliver(addr, PairComplete())
        return pair

    async def leave(self, app_id: str, side: Side, addr: Address) -> Pair | None:
        """Disconnect ``side`` (if ``addr`` still holds it); the other side is told."""
        self.sides_connected -= 1
        return await self._disconnect(app_id, side, addr)

    async def _disconnect(self, app_id: str, side: Side, addr: Address) -> Pair | None:
        now = self.clock()
        pair, _ = await self._update(app_id, lambda p: (
            rules.leave(p, side, addr, now, self.settings.ttl), None))
        other = pair.conn(side.other) if pair is not None else None
        if other is not None:
            self._courier.deliver(other, PeerLeft(side))
        return pair

    async def relay(self, app_id: str, side: Side, kind: str, raw: bytes) -> None:
        """Forward a signaling frame to the other side; PeerNotFound when it is absent."""
        pair = await self.store.get(rules.app_key(app_id))
        assert pair is None or isinstance(pair, Pair)
        other = pair.conn(side.other) if pair is not None else None
        if other is None:
            raise PeerNotFound(f"side {side.other.value} is not connected; {kind!r} was not "
                               "relayed")
        self.relayed[kind] += 1
        if not self._courier.deliver(other, PairRelay(kind, raw)):
            raise ClusterUnavailable(f"side {side.other.value} is on another node, which "
                                     "cannot be reached now (the cluster backplane is down)")

    async def send(self, app_id: str, sender: Side, to: Side, payload: bytes) -> Mail:
        """Queue ``payload`` for ``to`` and deliver it now if ``to`` is connected."""
        now = self.clock()
        settings = self.settings

        def apply(p: Pair | None) -> tuple[Pair | None, object]:
            if p is None:
                raise CodeGone(f"appID {app_id} is unknown or expired")
            return rules.enqueue(p, sender, to, payload, settings.mailbox_size, now,
                                 settings.ttl)

        pair, mail = await self._update(app_id, apply)
        assert pair is not None and isinstance(mail, Mail)
        recipient = pair.conn(to)
        if recipient is not None:
            self._courier.deliver(recipient, PairMail(mail))
        return mail

    async def acknowledge(self, app_id: str, side: Side, up_to: int) -> Pair:
        """Drop ``side``'s messages up to ``up_to``; returns the pair after."""
        def apply(p: Pair | None) -> tuple[Pair | None, object]:
            if p is None:
                raise CodeGone(f"appID {app_id} is unknown or expired")
            return rules.acknowledge(p, side, up_to), None

        pair, _ = await self._update(app_id, apply)
        assert pair is not None
        return pair

    def count_telemetry(self, event: str) -> None:
        """Count a telemetry event (distinct labels are capped)."""
        if event not in self.telemetry and len(self.telemetry) >= _MAX_TELEMETRY_LABELS:
            event = "other"
        self.telemetry[event] += 1

    async def sweep_node(self, node: str, alive: Alive) -> None:
        """Sides connected to ``node`` whose connection is gone are disconnected (the
        other side is told); their mailboxes stay, and expire with the pair."""
        for value in (await self.store.scan(rules.APP_PREFIX)).values():
            if not isinstance(value, Pair):
                continue
            for side in (Side.A, Side.B):
                addr = value.conn(side)
                if addr is not None and addr.node == node and not alive(addr):
                    await self._disconnect(value.app_id, side, addr)

    # -- janitor -------------------------------------------------------------------------

    async def sweep(self) -> tuple[int, int]:
        """Drop expired codes and expired, empty pairs; returns how many of each."""
        now = self.clock()

        def take(v: Mapping[str, object | None]
                 ) -> tuple[dict[str, object | None], frozenset[str]]:
            idx = v[rules.CODES_KEY]
            assert idx is None or isinstance(idx, CodeIndex)
            if idx is None:
                return {}, frozenset()
            gone = frozenset(c for c, at in idx.expiry.items() if at <= now)
            return ({rules.CODES_KEY: idx.without(gone)} if gone else {}), gone

        codes = await self.store.transact([rules.CODES_KEY], take)
        for code in codes:
            key = rules.code_key(code)

            def drop(v: Mapping[str, object | None], key: str = key
                     ) -> tuple[dict[str, object | None], None]:
                entry = v[key]
                expired = isinstance(entry, CodeEntry) and entry.expires_at <= now
                return ({key: None} if expired else {}), None

            await self.store.transact([key], drop)
        self.codes["expired"] += len(codes)

        apps = await self.store.get(rules.APPS_KEY)
        assert apps is None or isinstance(apps, frozenset)
        dead: set[str] = set()
        for app_id in apps or ():
            pair, _ = await self._update(app_id, lambda p: (
                None if p is None or p.expired(now) else p, None))
            if pair is None:
                dead.add(app_id)
                self.depths.pop(app_id, None)
        if dead:
            def forget(v: Mapping[str, object | None]
                       ) -> tuple[dict[str, object | None], None]:
                current = v[rules.APPS_KEY]
                assert current is None or isinstance(current, frozenset)
                return {rules.APPS_KEY: (current or frozenset()) - dead}, None

            await self.store.transact([rules.APPS_KEY], forget)
        self.codes["pairs_expired"] += len(dead)
        return len(codes), len(dead)

    async def janitor(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled."""
        while True:
            await self.clock.sleep(interval)
            try:
                codes, pairs = await self.sweep()
            except ClusterUnavailable:
                log.warning("pairing janitor: the cluster backplane is unreachable; "
                            "the next sweep will catch up")
                continue
            except Exception:
                log.exception("pairing janitor sweep failed")
                continue
            self.swept.set()
            if codes or pairs:
                log.debug("janitor swept %d codes and %d pairs", codes, pairs)
