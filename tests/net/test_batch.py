"""The fast path's turn batch: frames sent to a connection in one turn of the event loop
leave together, and control and close frames never overtake what was staged before them."""

from __future__ import annotations

import orjson

from rtchub.net.batch import MAX_STAGED
from tests.rawws import RawWs
from tests.rawws import frame as raw_frame
from tests.support import FakeClock, running


async def test_frames_staged_in_a_turn_reach_the_client_before_the_close() -> None:
    # four refused frames in one write: four errors in one turn, the fourth past
    # WS_ERROR_RATE closes the connection in the same turn (its frames are still staged)
    async with running(clock=FakeClock(), ws_error_rate=(3, 60.0)) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms")
        raw.write(b"".join(raw_frame(0x1, b'{"type": "step%d"}' % i) for i in range(4)))
        for i in range(4):
            opcode, payload = await raw.recv()
            assert opcode == 0x1
            error = orjson.loads(payload)
            assert error["code"] == "unknown_type" and f"step{i}" in error["error"], error
        assert await raw.close_code() == 1008
        raw.close()


async def test_a_pong_follows_the_frames_staged_before_it() -> None:
    async with running() as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms")
        raw.write(raw_frame(0x1, b'{"type": "first"}') + raw_frame(0x1, b'{"type": "second"}')
                  + raw_frame(0x9, b"after"))
        seen = [await raw.recv() for _ in range(3)]
        assert [op for op, _ in seen] == [0x1, 0x1, 0xA]
        assert b"first" in seen[0][1] and b"second" in seen[1][1]
        assert seen[2][1] == b"after"
        raw.close()


async def test_more_frames_in_a_turn_than_are_staged_arrive_whole_and_in_order() -> None:
    n = 3 * MAX_STAGED + 5
    async with running(ws_error_rate=(0, 1.0), ws_msg_rate=(0, 1.0)) as srv:
        raw, _ = await RawWs.open(srv.port, "/ws/rooms")
        raw.write(b"".join(raw_frame(0x1, b'{"type": "n%d"}' % i) for i in range(n)))
        for i in range(n):
            opcode, payload = await raw.recv()
            assert opcode == 0x1 and f"'n{i}'" in orjson.loads(payload)["error"], payload
        await raw.send(0x1, b'{"type": "last"}')
        assert b"last" in (await raw.recv())[1]
        raw.close()
