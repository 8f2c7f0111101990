"""The browser app's shell: the lobby page, its assets and the RTC configuration."""
