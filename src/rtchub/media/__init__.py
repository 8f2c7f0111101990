"""The media plane: aiortc peers, ICE host addresses, RTP forwarding, MP3."""
