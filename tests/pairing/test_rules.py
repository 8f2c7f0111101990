"""The pure pairing rules: codes, pairs and mailboxes, with the clock and randomness passed in."""

from __future__ import annotations

import random

import pytest

from rtchub.base.connection import Address
from rtchub.errors import CodeGone, CodesExhausted, InvalidField, QueueFull, SideTaken
from rtchub.features.pairing import rules
from rtchub.features.pairing.rules import Chain, CodeEntry, CodeTaken, Side

A1 = Address("n", "c1")
A2 = Address("n", "c2")


def test_mint_refuses_a_live_code_and_reuses_an_expired_one() -> None:
    live = CodeEntry("7", "old", expires_at=100.0)
    with pytest.raises(CodeTaken):
        rules.mint(live, 5, "7", "app", now=10.0, ttl=60.0, digits=1, soonest=None)
    count, entry, pair = rules.mint(live, 5, "7", "app", now=100.0, ttl=60.0, digits=1,
                                    soonest=None)
    assert count == 5                       # replaced in place: the count stays
    assert entry == CodeEntry("7", "app", 160.0) and pair.app_id == "app"
    count, _, _ = rules.mint(None, 5, "8", "app", now=10.0, ttl=60.0, digits=1, soonest=None)
    assert count == 6


def test_every_code_live_means_exhausted_until_the_first_bucket_passes() -> None:
    with pytest.raises(CodesExhausted) as info:
        rules.mint(None, 10, "3", "app", now=1.0, ttl=60.0, digits=1, soonest=5.0)
    assert not isinstance(info.value, CodeTaken)
    assert info.value.retry_after == pytest.approx(4.0)


def test_codes_are_zero_padded() -> None:
    rng = random.Random(1)
    codes = {rules.choose_code(4, rng) for _ in range(200)}
    assert all(len(c) == 4 and c.isdigit() for c in codes)


def test_redeem_once_and_not_after_expiry() -> None:
    count, entry, _ = rules.mint(None, 0, "1234", "app", now=0.0, ttl=60.0, digits=4,
                                 soonest=None)
    after, found = rules.redeem(entry, count, "1234", now=59.0)
    assert found.app_id == "app" and after == 0
    with pytest.raises(CodeGone):
        rules.redeem(None, after, "1234", now=59.0)
    with pytest.raises(CodeGone):
        rules.redeem(entry, count, "1234", now=60.0)


def test_chains_grow_by_prepending_and_keep_their_order() -> None:
    chain = Chain("b", Chain("a"))
    assert list(Chain("c", chain)) == ["c", "b", "a"]
    assert list(chain) == ["b", "a"]                    # immutable
    assert Chain.of([]) is None and list(Chain.of(["x", "y"]) or ()) == ["x", "y"]


def test_join_leave_and_side_taken() -> None:
    _, _, pair = rules.mint(None, 0, "1", "app", now=0.0, ttl=60.0, digits=1,
                             soonest=None)
    pair = rules.join(pair, "app", Side.A, A1, now=1.0, ttl=60.0)
    with pytest.raises(SideTaken):
        rules.join(pair, "app", Side.A, A2, now=2.0, ttl=60.0)
    assert rules.leave(pair, Side.A, A2, now=3.0, ttl=60.0) is pair  # not the holder
    left = rules.leave(pair, Side.A, A1, now=3.0, ttl=60.0)
    assert left is not None and left.conn(Side.A) is None
    assert left.expires_at == 63.0 and not left.expired(62.0) and left.expired(63.0)
    with pytest.raises(CodeGone):
        rules.join(left, "app", Side.B, A2, now=63.0, ttl=60.0)


def test_mailbox_sequence_bound_and_acknowledgement() -> None:
    _, _, pair = rules.mint(None, 0, "1", "app", now=0.0, ttl=60.0, digits=1,
                             soonest=None)
    for n in range(3):
        pair, mail = rules.enqueue(pair, Side.A, Side.B, b"%d" % n, limit=3, now=1.0, ttl=60.0)
        assert mail.seq == n + 1
    with pytest.raises(QueueFull):
        rules.enqueue(pair, Side.A, Side.B, b"x", limit=3, now=1.0, ttl=60.0)
    assert pair.inbox(Side.B).size == 3 and pair.held == 3
    pair = rules.acknowledge(pair, Side.B, 2)
    assert [m.seq for m in pair.inbox(Side.B).items] == [3]
    with pytest.raises(InvalidField):
        rules.acknowledge(pair, Side.B, 4)
    pair, mail = rules.enqueue(pair, Side.A, Side.B, b"y", limit=3, now=1.0, ttl=60.0)
    assert mail.seq == 4  # numbering never restarts
    assert pair.inbox(Side.A).items == ()


def test_side_parsing() -> None:
    assert Side.parse("b") is Side.B and Side.B.other is Side.A
    with pytest.raises(InvalidField):
        Side.parse("C")


def test_mailbox_bytes_bound_counts_payloads_and_acks_free_them() -> None:
    _, _, pair = rules.mint(None, 0, "1", "app", now=0.0, ttl=60.0, digits=1, soonest=None)
    pair, _ = rules.enqueue(pair, Side.A, Side.B, b"x" * 60, 10, 0.0, 60.0, max_bytes=100)
    pair, _ = rules.enqueue(pair, Side.A, Side.B, b"y" * 40, 10, 0.0, 60.0, max_bytes=100)
    with pytest.raises(QueueFull, match="PAIR_MAILBOX_BYTES"):
        rules.enqueue(pair, Side.A, Side.B, b"z", 10, 0.0, 60.0, max_bytes=100)
    pair = rules.acknowledge(pair, Side.B, 1)
    assert pair.inbox(Side.B).size == 40
    pair, _ = rules.enqueue(pair, Side.A, Side.B, b"z" * 60, 10, 0.0, 60.0, max_bytes=100)
    assert pair.held == 100
