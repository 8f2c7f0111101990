"""Simulcast in the SDP the server writes (pure text functions, no I/O).

A browser asked for simulcast (``sendEncodings`` with RIDs) offers
``a=rid:q send`` ... ``a=simulcast:send q;h;f`` and the RID and repaired-RID
header extensions. aiortc's answer drops all of that, and a browser whose
simulcast is not answered sends only its first encoding. :func:`simulcast_offered`
reads what a client's description asks for; :func:`receive_simulcast` puts the
receiving side back into the server's descriptions (its answers, and its later
offers, which must keep it or the browser falls back to one encoding):
``a=rid:<rid> recv`` for each stream, ``a=simulcast:recv q;h;f`` and the two
``a=extmap`` lines with the client's ids.

Only codecs whose layers the SFU can switch between are answered with simulcast:
VP8 (picture id and TL0PICIDX rewritten at a switch) and H.264 (nothing in the
payload to rewrite). Anything else (VP9, AV1: aiortc negotiates neither) gets no
simulcast lines, so the browser sends one encoding.

Layer ``i`` of a track is the ``i``-th RID of the ``a=simulcast`` line: the
browser app lists them lowest first (``q;h;f``), which is what ``low`` /
``medium`` / ``high`` map to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rtchub.media.sfu.rtp import RID_URI, RRID_URI
from rtchub.media.sfu.sdp import join_sections, section_of, sections_of

__all__ = ["SIMULCAST_CODECS", "receive_simulcast", "simulcast_offered"]

SIMULCAST_CODECS: Final = ("vp8", "h264")
_EXTENSIONS: Final = (RID_URI, RRID_URI)


def simulcast_offered(sdp: str) -> dict[str, tuple[str, tuple[int | None, int | None]]]:
    """Per mid of ``sdp`` (a client's description), the RIDs it sends (``"q;h;f"``) and the
    ids it gave the RID and repaired-RID extensions; sections without simulcast are absent."""
    _, sections = sections_of(sdp)
    out: dict[str, tuple[str, tuple[int | None, int | None]]] = {}
    for index, lines in enumerate(sections):
        section = section_of(index, lines)
        if (section.kind != "video" or section.mid is None or not section.sends
                or len(section.rids) < 2):
            continue
        out[section.mid] = (";".join(section.rids),
                            (section.extensions.get(RID_URI), section.extensions.get(RRID_URI)))
    return out


def receive_simulcast(sdp: str,
                      offered: Mapping[str, tuple[str, tuple[int | None, int | None]]]) -> str:
    """``sdp`` (a server description) receiving simulcast on the sections of ``offered``.

    A section gets ``a=rid:<rid> recv`` lines, ``a=simulcast:recv`` and the RID
    and repaired-RID extensions (with the client's ids) when it is live, the
    server receives on it, its codec is one of :data:`SIMULCAST_CODECS` and the
    client gave the RID extension an id; otherwise it is left as it was.
    Idempotent: lines already present are not repeated.
    """
    if not offered:
        return sdp
    session, sections = sections_of(sdp)
    out: list[list[str]] = []
    for index, lines in enumerate(sections):
        section = section_of(index, lines)
        wanted = offered.get(section.mid or "")
        codec = next(iter(section.media_codecs), None)
        if (wanted is None or not section.receives or codec is None
                or codec.name.lower() not in SIMULCAST_CODECS or wanted[1][0] is None
                or any(line.startswith("a=simulcast:") for line in lines)):
            out.append(lines)
            continue
        rids, ids = wanted
        extra_ext = [f"a=extmap:{ident} {uri}" for uri, ident in zip(_EXTENSIONS, ids,
                                                                       strict=True)
                     if ident is not None and uri not in section.extensions]
        at = max((i + 1 for i, line in enumerate(lines) if line.startswith("a=extmap:")),
                 default=len(lines))
        body = [*lines[:at], *extra_ext, *lines[at:]]
        body += [f"a=rid:{rid} recv" for rid in rids.split(";")]
        body.append(f"a=simulcast:recv {rids}")
        out.append(body)
    return join_sections(session, out)
