"""The server's offers, renumbered to what the connection already uses (pure text).

aiortc numbers every codec and header extension of its offers from one fixed
table (Opus 96, VP8 97...), whatever was negotiated before. RFC 3264 8.3.2 does
not let a payload type change meaning within a session, and BUNDLE puts every
section in one numbering space, so a browser refuses such offers.
:class:`Numbering` remembers which payload types and extension ids the
connection has used; :func:`harmonize_offer` gives a section negotiated before
its negotiated codecs and extensions back, and a new section the client's
numbers for the same codecs (or numbers never used).
"""

from __future__ import annotations

import re
from typing import Final

from rtchub.media.sfu.sdp import (
    CODEC_ATTRS,
    Codec,
    Section,
    join_sections,
    parse_sections,
    section_of,
    sections_of,
)

__all__ = ["Numbering", "harmonize_offer"]

_FREE_PTS: Final = (*range(96, 128), *range(35, 64))


def _signature(codec: Codec, apt: int | None = None) -> str:
    """A codec's identity within one connection: format, clock, channels, parameters;
    for a retransmission format, the payload type it retransmits."""
    params = dict(codec.params)
    params.pop("apt", None)
    text = ";".join(f"{k}={v}" for k, v in sorted(params.items()))
    base = f"{codec.name.lower()}/{codec.clock_rate}/{codec.channels or ''}/{text}"
    return f"{base}>apt={apt}" if codec.is_rtx else base


def _signatures(section: Section) -> dict[int, str]:
    return {c.payload_type: _signature(c, c.apt) for c in section.codecs}


class Numbering:
    """Payload types and header extension ids one connection has used so far.

    Learn every description exchanged (:meth:`learn`); after a negotiation
    completes, remember its answer's codec and extension lines per mid
    (:meth:`settle`), which :func:`harmonize_offer` restores in later offers.
    """

    def __init__(self) -> None:
        self.payload_types: dict[int, str] = {}  # payload type -> codec signature
        self.extension_ids: dict[str, int] = {}  # uri -> id
        self.settled: dict[str, tuple[str, list[str]]] = {}  # mid -> (formats, lines)

    def learn(self, sdp: str) -> None:
        """Note the payload types and extension ids ``sdp`` uses."""
        for section in parse_sections(sdp):
            for pt, signature in _signatures(section).items():
                self.payload_types.setdefault(pt, signature)
            for uri, ident in section.extensions.items():
                self.extension_ids.setdefault(uri, ident)

    def settle(self, answer: str) -> None:
        """Remember each section's negotiated codecs and extensions (from the answer)."""
        self.learn(answer)
        _, sections = sections_of(answer)
        for index, lines in enumerate(sections):
            section = section_of(index, lines)
            if section.mid is None or section.kind not in ("audio", "video"):
                continue
            formats = " ".join(lines[0].split()[3:])
            kept = [line for line in lines[1:]
                    if line.startswith((*CODEC_ATTRS, "a=extmap:"))]
            self.settled[section.mid] = (formats, kept)


def harmonize_offer(sdp: str, numbering: Numbering) -> str:
    """The server's offer renumbered to agree with what the connection negotiated.

    A section negotiated before gets its negotiated codecs and extensions back;
    a new section's codecs take the payload type the connection already uses
    for the same codec, else the one it was offered with if the connection never used
    that, else a free one; its extensions likewise (the connection's id, else the
    offered one if free, else a free one).
    """
    session, sections = sections_of(sdp)
    used_pts = set(numbering.payload_types)
    used_ids = set(numbering.extension_ids.values())
    assigned_pts: dict[str, int] = {}
    assigned_ids: dict[str, int] = {}
    out: list[list[str]] = []
    for index, lines in enumerate(sections):
        section = section_of(index, lines)
        if section.kind not in ("audio", "video"):
            out.append(lines)
            continue
        settled = numbering.settled.get(section.mid or "")
        if settled is not None:
            formats, kept = settled
            head = lines[0].split()[:3]
            body = [line for line in lines[1:]
                    if not line.startswith((*CODEC_ATTRS, "a=extmap:"))]
            out.append([" ".join([*head, formats]), *kept, *body])
            continue
        # a new section: renumber payload types, then extension ids
        mapping: dict[int, int] = {}
        for codec in sorted(section.codecs, key=lambda c: c.is_rtx):  # media before RTX
            apt = codec.apt
            signature = _signature(codec, None if apt is None else mapping.get(apt, apt))
            pt = assigned_pts.get(signature)
            if pt is None:
                pt = next((p for p, s in numbering.payload_types.items() if s == signature),
                          None)
            if pt is None:   # keep the number the offer was made with when it is free
                pt = codec.payload_type if codec.payload_type not in used_pts else next(
                    p for p in _FREE_PTS if p not in used_pts)
            used_pts.add(pt)
            assigned_pts[signature] = pt
            mapping[codec.payload_type] = pt
        ext_map: dict[int, int] = {}
        for uri, old in section.extensions.items():
            new = numbering.extension_ids.get(uri) or assigned_ids.get(uri)
            if new is None:   # the offer's own id when free (aiortc clients need it:
                # they keep one extension map per transport, from their own fixed table)
                new = old if old not in used_ids else next(
                    i for i in range(1, 15) if i not in used_ids)
            used_ids.add(new)
            assigned_ids[uri] = new
            ext_map[old] = new
        out.append(_renumber(lines, mapping, ext_map))
    return join_sections(session, out)


def _renumber(lines: list[str], pts: dict[int, int], ids: dict[int, int]) -> list[str]:
    head = lines[0].split()
    formats = [str(pts.get(int(f), int(f))) if f.isdigit() else f for f in head[3:]]
    out = [" ".join([*head[:3], *formats])]
    for original in lines[1:]:
        line = original
        if line.startswith(CODEC_ATTRS):
            prefix, rest = line.split(":", 1)
            pt, _, value = rest.partition(" ")
            if pt.isdigit():
                pt = str(pts.get(int(pt), int(pt)))
            if prefix == "a=fmtp":
                value = re.sub(r"(?<![\w-])apt=(\d+)",
                               lambda m: f"apt={pts.get(int(m.group(1)), int(m.group(1)))}",
                               value)
            line = f"{prefix}:{pt} {value}"
        elif line.startswith("a=extmap:"):
            ident, _, rest = line[9:].partition(" ")
            number, slash, direction = ident.partition("/")
            if number.isdigit():
                number = str(ids.get(int(number), int(number)))
            line = f"a=extmap:{number}{slash}{direction} {rest}"
        out.append(line)
    return out
