"""Sessions: the glue between one connection's dialect and the core.

A session decodes frames with its dialect (:mod:`rtchub.protocols`), drives the
core, and renders the core's events back in that dialect. Sessions see a
:class:`~rtchub.transport.connection.Connection`, never a socket.
"""
