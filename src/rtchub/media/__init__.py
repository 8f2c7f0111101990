"""The media plane: aiortc peers and what they need from the host (ICE addresses)."""
