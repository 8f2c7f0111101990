"""What every feature shares about a connection: the head sniffer, the upgrade router, the
picows and aiohttp WebSocket paths, the bounded send path, the serial executor with its
error boundary, the heartbeat, listeners and shutdown. ``docs/architecture.md`` draws it."""
