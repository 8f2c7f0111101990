"""SDP as the SFU reads and rewrites it (pure text functions, no I/O, no aiortc state).

aiortc parses and prints SDP itself but drops what it does not model
(bandwidth lines, rejected sections) and numbers every codec and header
extension of its own offers from one fixed table. The SFU works on the text
around it:

- :func:`parse_sections` reads what a description says per media section:
  mid, kind, port, direction, msid, codecs, header extensions, SSRCs and their
  retransmission pairs.
- :func:`restrict_offer` keeps, in a client's offer, only the codecs the
  configuration allows (in its order of preference) before aiortc sees it, and
  raises :class:`~rtchub.errors.CodecNotSupported` when a section has none left.
- :func:`cap_answer` puts the configured bitrate caps into the answer.
- :func:`reject_sections` keeps stopped sections rejected (aiortc answers them
  as if they were live).

:mod:`.numbering` rewrites the server's own offers to the connection's numbering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from rtchub.errors import CodecNotSupported, InvalidSDP
from rtchub.media.sfu.config import SfuMediaConfig

__all__ = [
    "Codec",
    "Section",
    "cap_answer",
    "join_sections",
    "parse_sections",
    "reject_sections",
    "restrict_offer",
    "section_of",
    "sections_of",
    "simulcast_rids",
]

DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
_M_LINE: Final = re.compile(r"^m=(\S+) (\d+)(?:/\d+)? (\S+)(?: (.*))?$")
CODEC_ATTRS: Final = ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type of a media section."""

    payload_type: int
    name: str  # as in a=rtpmap: "VP8", "opus", "rtx"
    clock_rate: int
    channels: int | None
    params: Mapping[str, str]  # a=fmtp, parsed
    feedback: tuple[str, ...]  # a=rtcp-fb values

    def mime(self, kind: str) -> str:
        """``kind/name`` ("video/VP8")."""
        return f"{kind}/{self.name}"

    @property
    def is_rtx(self) -> bool:
        """True for an RFC 4588 retransmission format."""
        return self.name.lower() == "rtx"

    @property
    def apt(self) -> int | None:
        """The payload type an RTX format retransmits."""
        value = self.params.get("apt")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def key(self) -> str:
        """What makes two payload types on two connections the same codec for forwarding."""
        key = f"{self.name.lower()}/{self.clock_rate}"
        if self.name.lower() == "h264":
            key += f";packetization-mode={self.params.get('packetization-mode', '0')}"
        return key


@dataclass(frozen=True, slots=True)
class Section:
    """One m= section of a description."""

    index: int
    kind: str
    port: int
    mid: str | None
    direction: str
    msid: tuple[str, str] | None  # (stream id, track id)
    codecs: tuple[Codec, ...]
    extensions: Mapping[str, int]  # uri -> id
    ssrcs: tuple[int, ...]
    rtx_ssrcs: Mapping[int, int] = field(default_factory=dict)  # media SSRC -> RTX SSRC
    rids: tuple[str, ...] = ()  # simulcast streams (a=simulcast, sent or received), in order

    @property
    def rejected(self) -> bool:
        """A zero port: the section is stopped."""
        return self.port == 0

    @property
    def sends(self) -> bool:
        """The author of the description sends media here."""
        return not self.rejected and self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """The author of the description receives media here."""
        return not self.rejected and self.direction in ("sendrecv", "recvonly")

    def codec(self, payload_type: int) -> Codec | None:
        """The codec of ``payload_type``, if listed."""
        return next((c for c in self.codecs if c.payload_type == payload_type), None)

    @property
    def media_codecs(self) -> tuple[Codec, ...]:
        """The codecs that are not retransmission formats."""
        return tuple(c for c in self.codecs if not c.is_rtx)

    def rtx_for(self, payload_type: int) -> int | None:
        """The RTX payload type that retransmits ``payload_type``, if negotiated."""
        return next((c.payload_type for c in self.codecs
                     if c.is_rtx and c.apt == payload_type), None)


def _split(sdp: str) -> tuple[list[str], list[list[str]]]:
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidSDP("the session description is empty")
    lines = [line.rstrip("\r") for line in sdp.split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        raise InvalidSDP("a session description starts with v=")
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _join(session: list[str], sections: Iterable[list[str]]) -> str:
    out = list(session)
    for section in sections:
        out += section
    return "\r\n".join(out) + "\r\n"


def _params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw in text.split(";"):
        part = raw.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip()
    return params


def _attr(line: str) -> tuple[str, str]:
    name, _, value = line[2:].partition(":")
    return name, value


def _section(index: int, lines: list[str]) -> Section:
    match = _M_LINE.match(lines[0])
    if match is None:
        raise InvalidSDP(f"media section {index} has a malformed m= line: {lines[0][:60]!r}")
    kind, port, formats = match.group(1), int(match.group(2)), (match.group(4) or "").split()
    mid = None
    direction = "sendrecv"
    msid = None
    rtpmap: dict[int, tuple[str, int, int | None]] = {}
    fmtp: dict[int, dict[str, str]] = {}
    feedback: dict[int, list[str]] = {}
    wildcard_fb: list[str] = []
    extensions: dict[str, int] = {}
    ssrcs: list[int] = []
    rtx_ssrcs: dict[int, int] = {}
    rids: tuple[str, ...] = ()
    try:
        for line in lines[1:]:
            if not line.startswith("a="):
                continue
            name, value = _attr(line)
            if name == "mid":
                mid = value.strip()
            elif name in DIRECTIONS:
                direction = name
            elif name == "msid":
                parts = value.split()
                if len(parts) >= 2:
                    msid = (parts[0], parts[1])
                elif parts:
                    msid = (parts[0], "")
            elif name == "rtpmap":
                pt, _, desc = value.partition(" ")
                bits = desc.strip().split("/")
                channels = int(bits[2]) if len(bits) > 2 else None
                rtpmap[int(pt)] = (bits[0], int(bits[1]), channels)
            elif name == "fmtp":
                pt, _, desc = value.partition(" ")
                fmtp[int(pt)] = _params(desc)
            elif name == "rtcp-fb":
                pt, _, desc = value.partition(" ")
                if pt == "*":
                    wildcard_fb.append(desc.strip())
                else:
                    feedback.setdefault(int(pt), []).append(desc.strip())
            elif name == "extmap":
                ident, _, rest = value.partition(" ")
                uri = rest.split()[0] if rest.split() else ""
                extensions[uri] = int(ident.split("/")[0])
            elif name == "ssrc":
                ssrc = int(value.split()[0])
                if ssrc not in ssrcs:
                    ssrcs.append(ssrc)
            elif name == "ssrc-group":
                parts = value.split()
                if parts and parts[0] == "FID" and len(parts) >= 3:
                    rtx_ssrcs[int(parts[1])] = int(parts[2])
            elif name == "simulcast":
                rids = simulcast_rids(value)
    except (ValueError, IndexError) as exc:
        raise InvalidSDP(f"media section {index} has a malformed attribute: {exc}") from None
    codecs: list[Codec] = []
    if kind in ("audio", "video"):
        for fmt in formats:
            if not fmt.isdigit():
                raise InvalidSDP(f"media section {index} lists payload type {fmt!r}")
            number = int(fmt)
            if number not in rtpmap:
                continue  # a static payload type without rtpmap: nothing rtchub forwards
            name, clock, channels = rtpmap[number]
            codecs.append(Codec(number, name, clock, channels, fmtp.get(number, {}),
                                tuple(feedback.get(number, []) + wildcard_fb)))
    return Section(index, kind, port, mid, direction, msid, tuple(codecs), extensions,
                   tuple(ssrcs), rtx_ssrcs, rids)


def simulcast_rids(value: str) -> tuple[str, ...]:
    """The RIDs an ``a=simulcast:`` value names (RFC 8853: ``send q;h;f`` or ``recv ...``),
    in order; of a stream's alternatives (``1,2``) the first, paused ones (``~q``) too."""
    words = value.split()
    for direction, streams in zip(words[::2], words[1::2], strict=False):
        if direction in ("send", "recv"):
            return tuple(s.split(",")[0].lstrip("~") for s in streams.split(";")
                         if s.split(",")[0].lstrip("~"))
    return ()


def sections_of(sdp: str) -> tuple[list[str], list[list[str]]]:
    """``sdp`` as its session lines and the lines of each media section (no line ends)."""
    return _split(sdp)


def join_sections(session: list[str], sections: Iterable[list[str]]) -> str:
    """The description of :func:`sections_of`'s parts, CRLF-terminated."""
    return _join(session, sections)


def section_of(index: int, lines: list[str]) -> Section:
    """What one section's lines say (``index`` is its position)."""
    return _section(index, lines)


def parse_sections(sdp: str) -> list[Section]:
    """Every media section of ``sdp``; raise :class:`InvalidSDP` when it is malformed."""
    _, sections = _split(sdp)
    return [_section(i, lines) for i, lines in enumerate(sections)]


# -- the client's offer ----------------------------------------------------------------


def _aiortc_accepts(codec: Codec, kind: str) -> bool:
    """Whether aiortc 1.16 can answer this codec (its H.264 is packetization mode 1,
    (constrained) baseline profile)."""
    if codec.mime(kind).lower() != "video/h264":
        return True
    profile = codec.params.get("profile-level-id", "42e01f").lower()
    return codec.params.get("packetization-mode", "0") == "1" and profile.startswith("42")


def _keep_codecs(lines: list[str], keep: list[int]) -> list[str]:
    """``lines`` with only the payload types in ``keep``, in that order: on the m= line
    and in the codec attributes (aiortc reads codecs in a=rtpmap order)."""
    head = lines[0].split()
    by_type: dict[str, list[str]] = {str(pt): [] for pt in keep}
    out = [" ".join([*head[:3], *map(str, keep)])]
    at: int | None = None
    for line in lines[1:]:
        if line.startswith(CODEC_ATTRS):
            pt = line.split(":", 1)[1].split(" ", 1)[0]
            if pt != "*":
                if at is None:
                    at = len(out)
                if pt in by_type:
                    by_type[pt].append(line)
                continue
        out.append(line)
    grouped = [line for pt in keep for line in by_type[str(pt)]]
    position = len(out) if at is None else at
    return [*out[:position], *grouped, *out[position:]]


def restrict_offer(sdp: str, config: SfuMediaConfig) -> str:
    """``sdp`` with only the allowed codecs, preferred first, in every live media section.

    Raises :class:`CodecNotSupported` naming the section when none of its codecs
    is allowed, and :class:`InvalidSDP` when the offer cannot be read.
    """
    session, sections = _split(sdp)
    out: list[list[str]] = []
    for index, lines in enumerate(sections):
        section = _section(index, lines)
        if section.kind not in ("audio", "video") or section.rejected:
            out.append(lines)
            continue
        allowed = [m.lower() for m in config.allowed(section.kind)]
        chosen = sorted(
            (c for c in section.media_codecs
             if c.mime(section.kind).lower() in allowed and _aiortc_accepts(c, section.kind)),
            key=lambda c: allowed.index(c.mime(section.kind).lower()))
        if not chosen:
            offered = sorted({c.name for c in section.media_codecs}) or ["none"]
            raise CodecNotSupported(
                f"the offer's {section.kind} section (mid {section.mid}) has none of the "
                f"allowed codecs: offered {', '.join(offered)}; allowed "
                f"{', '.join(config.allowed(section.kind)) or 'none'}")
        keep: list[int] = []
        for codec in chosen:
            keep.append(codec.payload_type)
            rtx = section.rtx_for(codec.payload_type)
            if rtx is not None:
                keep.append(rtx)
        out.append(_keep_codecs(lines, keep))
    return _join(session, out)


def cap_answer(sdp: str, config: SfuMediaConfig) -> str:
    """``sdp`` (an answer) with bitrate caps on each section the server receives on.

    ``b=AS`` (kbps) and ``b=TIAS`` (bps) per section, and Opus's
    ``maxaveragebitrate``, which browsers honour when they send; VP8's ``max-fs``
    (macroblocks) and ``max-fr`` (frames a second, RFC 7741 6.1) for the configured
    largest frame and rate (docs/calls.md says which senders honour them).
    """
    session, sections = _split(sdp)
    out: list[list[str]] = []
    for index, lines in enumerate(sections):
        section = _section(index, lines)
        if section.kind not in ("audio", "video") or not section.receives:
            out.append(lines)
            continue
        bitrate = config.max_bitrate(section.kind)
        body = [line for line in lines[1:] if not line.startswith("b=")]
        at = next((i + 1 for i, line in enumerate(body) if line.startswith("c=")), 0)
        body[at:at] = [f"b=AS:{max(1, bitrate // 1000)}", f"b=TIAS:{bitrate}"]
        if section.kind == "audio":
            body = _opus_cap(section, body, bitrate)
        else:
            body = _vp8_cap(section, body, config)
        out.append([lines[0], *body])
    return _join(session, out)


def _opus_cap(section: Section, body: list[str], bitrate: int) -> list[str]:
    return _set_params(section, body, "opus", {"maxaveragebitrate": str(bitrate)})


def _vp8_cap(section: Section, body: list[str], config: SfuMediaConfig) -> list[str]:
    return _set_params(section, body, "vp8", {"max-fs": str(config.video_max_macroblocks),
                                              "max-fr": str(config.video_max_fps)})


def _set_params(section: Section, body: list[str], name: str,
                values: dict[str, str]) -> list[str]:
    for codec in section.codecs:
        if codec.name.lower() != name:
            continue
        params = dict(codec.params)
        params.update(values)
        line = f"a=fmtp:{codec.payload_type} " + ";".join(f"{k}={v}" for k, v in params.items())
        prefix = f"a=fmtp:{codec.payload_type} "
        if any(x.startswith(prefix) for x in body):
            body = [line if x.startswith(prefix) else x for x in body]
        else:
            at = max((i for i, x in enumerate(body)
                      if x.startswith(f"a=rtpmap:{codec.payload_type} ")), default=len(body) - 1)
            body.insert(at + 1, line)
    return body


def reject_sections(sdp: str, mids: set[str]) -> str:
    """``sdp`` with the sections of ``mids`` rejected: port 0 and out of the BUNDLE group.

    An answer must reject what the offer rejected (a browser refuses one that
    bundles a stopped section), and the server's later offers keep them rejected.
    """
    if not mids:
        return sdp
    session, sections = _split(sdp)
    out_session = [
        " ".join(["a=group:BUNDLE", *(m for m in line.split()[1:] if m not in mids)])
        if line.startswith("a=group:BUNDLE") else line
        for line in session]
    out: list[list[str]] = []
    for index, lines in enumerate(sections):
        section = _section(index, lines)
        if section.mid in mids and not section.rejected:
            head = lines[0].split()
            out.append([" ".join([head[0], "0", *head[2:]]), *lines[1:]])
        else:
            out.append(lines)
    return _join(out_session, out)
