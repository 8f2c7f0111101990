"""The pure pairing rules: codes, pairs and mailboxes, with the clock and randomness passed in."""

from __future__ import annotations

import random

import pytest

from rtchub.base.connection import Address
from rtchub.errors import CodeGone, CodesExhausted, InvalidField, QueueFull, SideTaken
from rtchub.features.pairing import rules
from rtchub.features.pairing.rules import CodeIndex, Side

A1 = Address("n", "c1")
A2 = Address("n", "c2")


def test_choose_code_skips_live_codes_and_reuses_expired_ones() -> None:
    rng = random.Random(7)
    index = CodeIndex({f"{n}": 100.0 for n in range(9)} | {"9": 5.0})
    assert rules.choose_code(index, 10.0, 1, rng) == "9"  # the only one not live at t=10
    with pytest.raises(CodesExhausted) as info:
        rules.choose_code(index, 1.0, 1, rng)
    assert info.value.retry_after == pytest.approx(4.0)


def test_codes_are_zero_padded() -> None:
    rng = random.Random(1)
    codes = {rules.choose_code(CodeIndex(), 0.0, 4, rng) for _ in range(200)}
    assert all(len(c) == 4 and c.isdigit() for c in codes)


def test_redeem_once_and_not_after_expiry() -> None:
    index, entry, _ = rules.mint(None, "1234", "app", now=0.0, ttl=60.0)
    after, found = rules.redeem(entry, index, "1234", now=59.0)
    assert found.app_id == "app" and "1234" not in after.expiry
    with pytest.raises(CodeGone):
        rules.redeem(None, after, "1234", now=59.0)
    with pytest.raises(CodeGone):
        rules.redeem(entry, index, "1234", now=60.0)


def test_join_leave_and_side_taken() -> None:
    _, _, pair = rules.mint(None, "1", "app", now=0.0, ttl=60.0)
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
    _, _, pair = rules.mint(None, "1", "app", now=0.0, ttl=60.0)
    for n in range(3):
        pair, mail = rules.enqueue(pair, Side.A, Side.B, b"%d" % n, limit=3, now=1.0, ttl=60.0)
        assert mail.seq == n + 1
    with pytest.raises(QueueFull):
        rules.enqueue(pair, Side.A, Side.B, b"x", limit=3, now=1.0, ttl=60.0)
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
