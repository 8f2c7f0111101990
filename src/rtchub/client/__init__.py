"""rtchub's own pairing client: ``rtchub send FILE`` and ``rtchub receive CODE``.

Two people move a file peer to peer over a WebRTC data channel; the server
only mints the code and relays offer/answer between the pair's sides A
(sender) and B (receiver).
"""
