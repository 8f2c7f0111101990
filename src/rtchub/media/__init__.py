"""Media plane: aiortc peers, RTP forwarding, MP3."""
