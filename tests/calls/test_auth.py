"""Join tokens: what verifies, and every way a token is refused with ``unauthorized``."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import jwt
import pytest

from rtchub.errors import Unauthorized
from rtchub.features.calls.auth import (
    LEEWAY,
    AuthPolicy,
    Grants,
    TokenAuthorizer,
    authorize,
    mint_join_token,
    parse_grants,
    verify_join_token,
)

SECRET = "s" * 40
OTHER = "o" * 40
NOW = 1_767_225_600.0


def clock() -> float:
    return NOW


def mint(**kwargs: object) -> str:
    args: dict[str, object] = {"identity": "alice", "room": "standup", "clock": clock}
    args.update(kwargs)
    return mint_join_token(SECRET, **args)  # type: ignore[arg-type]


def b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_minted_token_verifies_with_its_grants() -> None:
    token = mint(record=True, display_name="Alice", ttl=60)
    grants = verify_join_token(token, "standup", SECRET, clock)
    assert grants == Grants(identity="alice", room="standup", publish=True, subscribe=True,
                            record=True, admin=False, display_name="Alice")
    assert grants.as_dict() == {"publish": True, "subscribe": True, "record": True,
                                "admin": False}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["sub"] == "alice" and claims["room"] == "standup"
    assert claims["exp"] - claims["nbf"] == 60


def test_expired_tokens_are_refused_past_the_leeway() -> None:
    token = mint(ttl=60)
    assert verify_join_token(token, "standup", SECRET, lambda: NOW + 60 + LEEWAY).identity
    with pytest.raises(Unauthorized, match="expired"):
        verify_join_token(token, "standup", SECRET, lambda: NOW + 61 + LEEWAY)


def test_a_token_not_valid_yet_is_refused() -> None:
    token = mint(ttl=60)
    with pytest.raises(Unauthorized, match="not valid for another"):
        verify_join_token(token, "standup", SECRET, lambda: NOW - LEEWAY - 1)


def test_a_token_for_another_room_is_refused() -> None:
    with pytest.raises(Unauthorized, match="for room 'standup', not 'all-hands'"):
        verify_join_token(mint(), "all-hands", SECRET, clock)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = mint_join_token(OTHER, identity="alice", room="standup", clock=clock)
    with pytest.raises(Unauthorized, match="signature"):
        verify_join_token(token, "standup", SECRET, clock)


def test_alg_none_is_refused_even_with_valid_claims() -> None:
    claims = {"sub": "alice", "room": "standup", "exp": NOW + 600, "grants": {"admin": True}}
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"typ": "JWT"}):
        token = f"{b64(header)}.{b64(claims)}."
        with pytest.raises(Unauthorized, match="algorithm"):
            verify_join_token(token, "standup", SECRET, clock)


def test_other_hmac_algorithms_are_refused() -> None:
    long_secret = "l" * 64
    token = jwt.encode({"sub": "alice", "room": "standup", "exp": NOW + 60}, long_secret,
                       algorithm="HS512")
    with pytest.raises(Unauthorized, match="'HS512' is not accepted"):
        verify_join_token(token, "standup", long_secret, clock)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "...", "\u00e9.\u00e9.\u00e9",
                                   f"{b64({'alg': 'HS256'})}.not-json.sig"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify_join_token(token, "standup", SECRET, clock)


@pytest.mark.parametrize("claims,message", [
    ({"room": "standup", "exp": NOW + 60}, "identity"),
    ({"sub": "alice", "exp": NOW + 60}, "names no room"),
    ({"sub": "alice", "room": "standup"}, "no 'exp'"),
    ({"sub": "alice", "room": "standup", "exp": "soon"}, "'exp' must be a number"),
    ({"sub": "alice", "room": "standup", "exp": NOW + 60, "grants": ["admin"]}, "object"),
    ({"sub": "alice", "room": "standup", "exp": NOW + 60, "grants": {"admin": "yes"}},
     "'admin' must be true or false"),
])
def test_signed_tokens_with_bad_claims_are_refused(claims: dict[str, object],
                                                   message: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match=message):
        verify_join_token(token, "standup", SECRET, clock)


def test_grants_left_out_default_to_publish_and_subscribe() -> None:
    token = jwt.encode({"sub": "bob", "room": "standup", "exp": NOW + 60}, SECRET,
                       algorithm="HS256")
    grants = verify_join_token(token, "standup", SECRET, clock)
    assert (grants.publish, grants.subscribe, grants.record, grants.admin) == (
        True, True, False, False)


def test_grant_lists_parse_and_refuse_unknown_names() -> None:
    assert parse_grants("publish, admin") == {"publish": True, "subscribe": False,
                                              "record": False, "admin": True}
    assert parse_grants("") == dict.fromkeys(("publish", "subscribe", "record", "admin"), False)
    with pytest.raises(ValueError, match="unknown grant 'owner'"):
        parse_grants("publish,owner")


def test_minting_refuses_short_secrets_and_bad_lifetimes() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_join_token("short", identity="a", room="r")
    with pytest.raises(ValueError, match="greater than zero"):
        mint(ttl=0)
    with pytest.raises(ValueError, match="identity and a room"):
        mint(identity="")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuthPolicy(secret="x" * 31)


def test_dev_mode_admits_everyone_as_a_guest() -> None:
    dev = AuthPolicy()
    grants = authorize(dev, "standup", None, "carol", "Carol", clock)
    assert grants.guest and grants.identity == "carol" and grants.display_name == "Carol"
    # recording writes to the server's disk, muting acts on others: both need a token
    assert (grants.publish, grants.subscribe, grants.record, grants.admin) == (
        True, True, False, False)
    # a token is not checked without a secret
    assert authorize(dev, "standup", "garbage", "carol", clock=clock).guest


def test_with_a_secret_a_token_is_required_unless_guests_are_allowed() -> None:
    strict = AuthPolicy(secret=SECRET)
    with pytest.raises(Unauthorized, match="needs a join token"):
        authorize(strict, "standup", None, "carol", clock=clock)
    grants = authorize(strict, "standup", mint(admin=True), None, clock=clock)
    assert grants.identity == "alice" and grants.admin and not grants.guest
    with pytest.raises(Unauthorized, match="for 'alice', not 'mallory'"):
        authorize(strict, "standup", mint(), "mallory", clock=clock)
    with pytest.raises(Unauthorized, match="expired"):
        authorize(strict, "standup", mint(ttl=1), None, clock=lambda: NOW + 3600)
    open_door = AuthPolicy(secret=SECRET, allow_guests=True)
    guest = authorize(open_door, "standup", None, "carol", clock=clock)
    assert guest.guest and (guest.publish, guest.subscribe, guest.record) == (
        True, True, False)
    # a bad token is refused even where guests are allowed: it is not a guest
    with pytest.raises(Unauthorized):
        authorize(open_door, "standup", "garbage", "carol", clock=clock)


def test_the_token_authorizer_gives_the_call_service_its_grants() -> None:
    authorizer = TokenAuthorizer(AuthPolicy(secret=SECRET), clock)
    grants = authorizer.authorize("standup", mint(record=True), None)
    assert (grants.identity, grants.room, grants.record, grants.admin) == (
        "alice", "standup", True, False)
    with pytest.raises(Unauthorized, match="needs a join token"):
        authorizer.authorize("standup", None, "alice")
