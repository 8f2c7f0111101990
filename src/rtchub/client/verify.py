"""The short verification string both sides print (derived from both DTLS fingerprints).

Each side's DTLS certificate fingerprint is in its SDP, and DTLS refuses a
certificate that does not match. A relay that swapped the connection would
have to put its own fingerprints in both SDPs, so the two people would read
different strings to each other.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fingerprint_of", "verification_string"]

_FINGERPRINT = re.compile(r"^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)\s*$", re.MULTILINE)


def fingerprint_of(sdp: str) -> str:
    """The SHA-256 DTLS fingerprint in ``sdp`` (upper case); ValueError when absent."""
    match = _FINGERPRINT.search(sdp)
    if match is None:
        raise ValueError("the session description has no sha-256 DTLS fingerprint")
    return match.group(1).upper()


def verification_string(offer_fingerprint: str, answer_fingerprint: str) -> str:
    """Twelve digits in three groups from the offerer's then the answerer's fingerprint."""
    digest = hashlib.sha256(f"rtchub-verify\n{offer_fingerprint}\n{answer_fingerprint}"
                            .encode()).digest()
    number = int.from_bytes(digest[:8], "big") % 10**12
    text = f"{number:012d}"
    return f"{text[0:4]}-{text[4:8]}-{text[8:12]}"
