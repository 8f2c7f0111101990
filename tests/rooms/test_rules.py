"""Pure rules, tested without sockets: room decisions, rate windows, client IPs, origins."""

from __future__ import annotations

import pytest

from rtchub.base.clientip import client_ip
from rtchub.base.connection import Address
from rtchub.base.ratelimit import FixedWindow
from rtchub.config import Limits, OriginPolicy
from rtchub.errors import IdTaken, RoomFull, all_codes
from rtchub.features.rooms.rules import (
    MemberRecord,
    RoomRecord,
    decide_join,
    decide_leave,
    hash_token,
)

A1, A2 = Address("n", "c1"), Address("n", "c2")


def member(mid: str, addr: Address, token: str = "t") -> MemberRecord:
    return MemberRecord(mid, addr, hash_token(token))


def test_join_creates_respects_limits_and_resumes() -> None:
    limits = Limits(max_rooms=1, max_room_members=2)
    first = decide_join(None, "r", member("a", A1), None, limits)
    assert first.created and first.room.member_ids == ("a",)
    room = decide_join(first.room, "r", member("b", A2), None, limits).room
    with pytest.raises(RoomFull):
        decide_join(room, "r", member("c", Address("n", "c3")), None, limits)
    with pytest.raises(IdTaken):
        decide_join(room, "r", member("a", A2), "wrong", limits)
    resumed = decide_join(room, "r", member("a", Address("n", "c9")), "t", limits)
    assert resumed.replaced == room.members[0]
    assert resumed.room.member_ids == ("a", "b")
    assert resumed.room.members[0].address == Address("n", "c9")


def test_leave_ignores_replaced_connections_and_empties_rooms() -> None:
    room = RoomRecord("r", (member("a", A1), member("b", A2)))
    assert decide_leave(room, "a", Address("n", "old")) is room
    after = decide_leave(room, "a", A1)
    assert after is not None and after.member_ids == ("b",)
    emptied = decide_leave(after, "b", A2)
    assert emptied is not None and emptied.members == ()
    assert decide_leave(None, "a", A1) is None


def test_fixed_window_with_injected_clock() -> None:
    window = FixedWindow(limit=2, window=60)
    assert window.hit("ip", 0.0) is None
    assert window.hit("ip", 1.0) is None
    assert window.hit("ip", 2.0) == pytest.approx(58.0)
    assert window.hit("other", 2.0) is None
    assert window.hit("ip", 60.0) is None
    assert FixedWindow(limit=0).hit("ip", 0.0) is None
    for i in range(10):
        window.hit(f"k{i}", 100.0)
    window.hit("sweeper", 500.0)
    assert len(window) == 1


def test_client_ip_believes_only_trusted_proxies() -> None:
    assert client_ip("10.0.0.1", "1.2.3.4", ()) == "10.0.0.1"
    assert client_ip("10.0.0.1", "1.2.3.4", ("10.0.0.1",)) == "1.2.3.4"
    assert client_ip("10.0.0.1", "9.9.9.9, 1.2.3.4, 10.0.0.2",
                     ("10.0.0.1", "10.0.0.2")) == "1.2.3.4"
    assert client_ip("10.0.0.1", None, ("10.0.0.1",)) == "10.0.0.1"


def test_origin_entries() -> None:
    policy = OriginPolicy.parse("localhost,example.com:8443,https://app.example.org/")
    assert policy.allows("http://localhost:8080")
    assert policy.allows("https://example.com:8443")
    assert not policy.allows("https://example.com")
    assert policy.allows("https://app.example.org")
    assert not policy.allows("http://app.example.org")
    assert policy.allows(None)
    assert OriginPolicy.parse("*").allows("https://anything")


def test_error_vocabulary_has_unique_codes_and_the_seed_sentinels() -> None:
    codes = all_codes()
    for code in ("peer_not_found", "peer_already_exists", "connection_failed",
                 "signaling_failed", "signaling_timeout", "invalid_sdp", "room_not_found",
                 "room_full", "not_in_room", "track_not_found", "codec_not_supported",
                 "sfu_not_enabled", "unauthorized", "id_taken"):
        assert code in codes
    assert len({cls.__name__ for cls in codes.values()}) == len(codes)
