"""The only code that touches sockets: aiohttp, picows, listeners."""
