"""What every JSON dialect shares: the frame envelope and the WebRTC value validators."""
