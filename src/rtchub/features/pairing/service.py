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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from rtchub.base.clientip import ip_key
from rtchub.base.clock import Clock
from rtchub.base.connection import Address
from rtchub.base.ratelimit import Concurrent
from rtchub.cluster.courier import Delivery
from rtchub.cluster.store import Expiring, StateStore
from rtchub.errors import (
    ClusterUnavailable,
    CodeGone,
    CodesExhausted,
    PeerNotFound,
    QueueFull,
    RateLimited,
)
from rtchub.features.pairing import rules
from rtchub.features.pairing.events import PairComplete, PairMail, PairRelay, PeerLeft
from rtchub.features.pairing.rules import Chain, CodeEntry, CodeTaken, Mail, Pair, Side

__all__ = ["Minted", "PairService", "PairSettings"]

log = logging.getLogger("rtchub.pairing")

_MINT_ATTEMPTS = 32      # random codes tried before a run of consecutive ones
_MINT_SCAN = 1024        # the longest run of consecutive codes tried
_MAX_TELEMETRY_LABELS = 64
_MINUTE = 60.0
_BUDGET_KEY = "rl:pair-redeem-budget"
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
    mailbox_bytes: int = 1 << 20          # per side (PAIR_MAILBOX_BYTES)
    mailbox_total: int = 256 << 20        # every mailbox of this node (PAIR_MAILBOX_TOTAL)
    mints_per_min: int = 30               # per client IP (PAIR_MINTS_PER_MIN)
    max_per_ip: int = 20                  # live pairs minted by one IP (PAIR_MAX_PER_IP)
    redeem_budget_per_min: int = 100      # failed redeems, all IPs (PAIR_REDEEM_BUDGET_PER_MIN)


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
        # per client IP (an IPv6 /64 as one), in the store (one window for the cluster):
        # failed redeems and mints; the deployment's failed redeems (what walking the code
        # space costs) likewise. Live pairs minted per IP are counted on the minting node.
        self._owned = Concurrent(settings.max_per_ip)
        self._owners: dict[str, str] = {}      # appID -> the IP key that minted it
        self._held: dict[str, int] = {}        # appID -> mailbox bytes held
        self.held_total = 0                    # mailbox bytes held on this node
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

    async def mint(self, remote: str = "unknown") -> Minted:
        """Mint a code bound to a new pair, in O(1): :class:`RateLimited` past the per-IP
        mint rate or live pairs, :class:`CodesExhausted` when every code is live."""
        settings = self.settings
        key = ip_key(remote)
        if settings.mints_per_min > 0:
            mints, left = await self.store.hit(f"rl:pair-mint:{key}", _MINUTE)
            if mints > settings.mints_per_min:
                self.codes["mint_limited"] += 1
                raise RateLimited(f"at most {settings.mints_per_min} codes per minute from "
                                  "one address (PAIR_MINTS_PER_MIN)", max(left, 0.001))
        if self._owned.full(key):
            self.codes["mint_limited"] += 1
            raise RateLimited(f"{remote} holds {settings.max_per_ip} live pairs already "
                              "(PAIR_MAX_PER_IP); they expire ROOM_TTL after their last use",
                              min(settings.ttl, _MINUTE))
        for code in self._candidates():
            try:
                minted = await self._mint_one(code, self.clock())
            except CodeTaken:
                continue   # a live code: choose again
            except CodesExhausted:
                self.codes["exhausted"] += 1
                raise
            self.codes["minted"] += 1
            self.depths[minted.app_id] = 0
            self._owners[minted.app_id] = key
            self._owned.add(key)
            return minted
        self.codes["exhausted"] += 1
        buckets = await self.store.get(rules.BUCKETS_KEY)
        assert isinstance(buckets, frozenset | None)
        now = self.clock()
        wait = (min(buckets) + 1) * rules.BUCKET - now if buckets else 1.0
        raise CodesExhausted(f"every pairing code tried is in use ({10 ** settings.code_digits}"
                             " codes); retry when one expires", max(wait, 1.0))

    def _candidates(self) -> Iterator[str]:
        """Codes to try, each against its own key: random ones, then (a space nearly full)
        a bounded run of consecutive ones from a random start."""
        digits = self.settings.code_digits
        for _ in range(_MINT_ATTEMPTS):
            yield rules.choose_code(digits, self._rng)
        space = 10 ** digits
        start = int(rules.choose_code(digits, self._rng))
        for n in range(min(space, _MINT_SCAN)):
            yield f"{(start + n) % space:0{digits}d}"

    async def _mint_one(self, code: str, now: float) -> Minted:
        settings = self.settings
        app_id = self._new_app_id()
        bucket = rules.bucket_of(now + settings.ttl)
        ckey, bkey, akey = rules.code_key(code), rules.bucket_key(bucket), rules.app_key(app_id)

        def apply(v: Mapping[str, object | None]) -> tuple[dict[str, object | None], Minted]:
            entry, live, buckets = v[ckey], v[rules.LIVE_KEY], v[rules.BUCKETS_KEY]
            chain, apps = v[bkey], v[rules.APPS_KEY]
            assert entry is None or isinstance(entry, CodeEntry)
            assert isinstance(live, int | None) and isinstance(buckets, frozenset | None)
            assert isinstance(chain, Chain | None) and isinstance(apps, Chain | None)
            soonest = (min(buckets) + 1) * rules.BUCKET if buckets else None
            new_live, new_entry, pair = rules.mint(entry, live or 0, code, app_id, now,
                                                   settings.ttl, settings.code_digits, soonest)
            updates: dict[str, object | None] = {
                ckey: new_entry, rules.LIVE_KEY: new_live, bkey: Chain(code, chain),
                akey: _stored(pair, now), rules.APPS_KEY: Chain(app_id, apps)}
            if not buckets or bucket not in buckets:
                updates[rules.BUCKETS_KEY] = (buckets or frozenset()) | {bucket}
            return updates, Minted(code, app_id, new_entry.expires_at)

        return await self.store.transact(
            [ckey, rules.LIVE_KEY, bkey, rules.BUCKETS_KEY, akey, rules.APPS_KEY], apply)

    async def redeem(self, code: str, remote: str) -> CodeEntry:
        """Consume ``code`` once. Failed attempts count against ``remote``'s window (an
        IPv6 /64 as one address) and against the deployment's budget (both in the store:
        one window for the whole cluster)."""
        now = self.clock()
        settings = self.settings
        if settings.redeem_failures_per_min > 0:
            failures, left = await self.store.hit(self._failure_key(remote), _MINUTE, 0)
            if failures >= settings.redeem_failures_per_min:
                self.codes["rate_limited"] += 1
                raise RateLimited(f"too many failed redeems from {remote}", max(left, 0.001))
        if settings.redeem_budget_per_min > 0:
            failures, left = await self.store.hit(_BUDGET_KEY, _MINUTE, 0)
            if failures >= settings.redeem_budget_per_min:
                self.codes["rate_limited"] += 1
                raise RateLimited("too many failed redeems on this server (someone may be "
                                  "guessing codes); retry later", max(left, 0.001))
        key = rules.code_key(code)

        def apply(v: Mapping[str, object | None]) -> tuple[dict[str, object | None], CodeEntry]:
            entry, live = v[key], v[rules.LIVE_KEY]
            assert entry is None or isinstance(entry, CodeEntry)
            assert isinstance(live, int | None)
            new_live, found = rules.redeem(entry, live or 0, code, now)
            return {key: None, rules.LIVE_KEY: new_live}, found

        try:
            entry = await self.store.transact([key, rules.LIVE_KEY], apply)
        except CodeGone:
            self.codes["gone"] += 1
            await self.fail_redeem(remote)
            raise
        self.codes["redeemed"] += 1
        return entry

    async def fail_redeem(self, remote: str) -> None:
        """Count a failed or malformed redeem against ``remote``'s window and the
        deployment's budget; say so once when the budget runs out."""
        settings = self.settings
        if settings.redeem_failures_per_min > 0:
            await self.store.hit(self._failure_key(remote), _MINUTE)
        limit = settings.redeem_budget_per_min
        if limit <= 0:
            return
        failures, left = await self.store.hit(_BUDGET_KEY, _MINUTE)
        if failures == limit:   # the hit that closed the budget: said once per window
            self.codes["budget_exhausted"] += 1
            log.warning("pairing: %d failed redeems within a minute "
                        "(PAIR_REDEEM_BUDGET_PER_MIN); every redeem is refused for %.0fs. "
                        "Someone may be guessing codes", limit, left,
                        extra={"event": "redeem_budget_exhausted", "last_remote": remote})

    @staticmethod
    def _failure_key(remote: str) -> str:
        return f"rl:pair-redeem:{ip_key(remote)}"

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
            self._hold(app_id, pair.held)
        return pair, extra

    def _hold(self, app_id: str, held: int) -> None:
        self.held_total += held - self._held.get(app_id, 0)
        if held:
            self._held[app_id] = held
        else:
            self._held.pop(app_id, None)

    async def join(self, app_id: str, side: Side, addr: Address) -> Pair:
        """Connect ``side``; tells both sides ``room_full`` when the pair is complete."""
        now = self.clock()
        pair, _ = await self._update(app_id, lambda p: (
            rules.join(p, app_id, side, addr, now, self.settings.ttl), None))
        assert pair is not None
        self.sides_connected += 1
        other = pair.conn(side.other)
        if other is not None:
            self._courier.deliver(other, PairComplete(addr))
            self._courier.deliver(addr, PairComplete(other))
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

    def relay(self, other: Address | None, side: Side, kind: str, raw: bytes) -> None:
        """Forward a signaling frame from ``side`` to the other side's connection ``other``
        (the partner its :class:`PairComplete` named; None: PeerNotFound). The hot path:
        no store round trip, no task."""
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

        if self.held_total + len(payload) > settings.mailbox_total:
            raise QueueFull(f"the server's mailboxes hold {self.held_total} bytes; the limit "
                            f"is {settings.mailbox_total} (PAIR_MAILBOX_TOTAL): retry later")

        def apply(p: Pair | None) -> tuple[Pair | None, object]:
            if p is None:
                raise CodeGone(f"appID {app_id} is unknown or expired")
            return rules.enqueue(p, sender, to, payload, settings.mailbox_size, now,
                                 settings.ttl, settings.mailbox_bytes)

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
        """Drop expired codes (whole sweep buckets once they passed) and expired, empty
        pairs; returns how many of each."""
        now = self.clock()
        buckets = await self.store.get(rules.BUCKETS_KEY)
        assert isinstance(buckets, frozenset | None)
        codes = 0
        for bucket in sorted(b for b in buckets or () if (b + 1) * rules.BUCKET <= now):
            chain = await self.store.get(rules.bucket_key(bucket))
            assert isinstance(chain, Chain | None)
            for code in chain or ():
                codes += await self.store.transact([rules.code_key(code), rules.LIVE_KEY],
                                                   _expire_code(code, now))
            await self.store.transact([rules.bucket_key(bucket), rules.BUCKETS_KEY],
                                      _drop_bucket(bucket))
        self.codes["expired"] += codes

        apps = await self.store.get(rules.APPS_KEY)
        assert isinstance(apps, Chain | None)
        dead: set[str] = set()
        for app_id in apps or ():
            pair, _ = await self._update(app_id, lambda p: (
                None if p is None or p.expired(now) else p, None))
            if pair is None:
                dead.add(app_id)
                self._forget(app_id)
        if dead:
            def forget(v: Mapping[str, object | None]
                       ) -> tuple[dict[str, object | None], None]:
                current = v[rules.APPS_KEY]
                assert isinstance(current, Chain | None)
                return {rules.APPS_KEY: Chain.of([a for a in current or () if a not in dead])
                        }, None

            await self.store.transact([rules.APPS_KEY], forget)
        self.codes["pairs_expired"] += len(dead)
        return codes, len(dead)

    def _forget(self, app_id: str) -> None:
        """A pair is gone: its counts on this node go with it."""
        self.depths.pop(app_id, None)
        self._hold(app_id, 0)
        owner = self._owners.pop(app_id, None)
        if owner is not None:
            self._owned.remove(owner)

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


Updates = tuple[dict[str, object | None], int]


def _expire_code(code: str, now: float) -> Callable[[Mapping[str, object | None]], Updates]:
    """A mutation deleting ``code``'s entry if it expired (not if it was minted again)."""
    key = rules.code_key(code)

    def apply(v: Mapping[str, object | None]) -> Updates:
        entry, live = v[key], v[rules.LIVE_KEY]
        assert isinstance(live, int | None)
        if not isinstance(entry, CodeEntry) or entry.expires_at > now:
            return {}, 0
        return {key: None, rules.LIVE_KEY: max((live or 0) - 1, 0)}, 1

    return apply


def _drop_bucket(bucket: int) -> Callable[[Mapping[str, object | None]],
                                          tuple[dict[str, object | None], None]]:
    def apply(v: Mapping[str, object | None]) -> tuple[dict[str, object | None], None]:
        buckets = v[rules.BUCKETS_KEY]
        assert isinstance(buckets, frozenset | None)
        return {rules.bucket_key(bucket): None,
                rules.BUCKETS_KEY: (buckets or frozenset()) - {bucket} or None}, None

    return apply
