"""Rules and decisions: rooms, members, queues, codes, streams. No I/O of its own.

Nothing here imports aiohttp, picows, redis, aiortc or socketio; state lives in a
:class:`~rtchub.core.store.StateStore` and delivery goes through a
:class:`~rtchub.core.events.Courier`, both injected.
"""
