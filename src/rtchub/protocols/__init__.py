"""Wire dialects: text <-> typed messages, one module per protocol. No sockets here."""
