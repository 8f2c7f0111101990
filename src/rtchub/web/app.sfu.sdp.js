// What the app needs to read from an SDP in SFU mode: per media section, its mid,
// kind, direction and msid. The server names each forwarded track in its offer with
// `a=msid:<publisher's stream id> <publisher's track id>`; a section reused for another
// subscription gets the new msid, while the browser keeps the receiver's track object,
// so the mapping is read from the remote description, not from `track.id`.

/**
 * The media sections of `sdp`: [{mid, kind, direction, streamId, trackId, port}], in order.
 * `direction` is the section's own (sendrecv when none is written); `port` 0 means rejected.
 */
export function sections(sdp) {
  const out = [];
  const parts = String(sdp || '').split(/\r?\n(?=m=)/);
  for (const part of parts.slice(1)) {
    const m = /^m=(\w+) (\d+)/.exec(part);
    if (!m) continue;
    const section = {
      kind: m[1], port: Number(m[2]), mid: null, direction: 'sendrecv', streamId: null, trackId: null,
    };
    for (const line of part.split(/\r?\n/)) {
      if (line.startsWith('a=mid:')) section.mid = line.slice(6).trim();
      else if (/^a=(sendrecv|sendonly|recvonly|inactive)\s*$/.test(line)) section.direction = line.slice(2).trim();
      else if (line.startsWith('a=msid:')) {
        const [stream, track] = line.slice(7).trim().split(/\s+/);
        section.streamId = stream || null;
        section.trackId = track || null;
      }
    }
    out.push(section);
  }
  return out;
}

/**
 * What the remote side sends us, by mid: {mid -> {trackId, streamId, kind}} for every live
 * section of the remote description in which it sends (sendonly or sendrecv).
 */
export function remoteSenders(sdp) {
  const out = new Map();
  for (const s of sections(sdp)) {
    if (s.port === 0 || !s.mid || s.kind === 'application') continue;
    if (s.direction !== 'sendonly' && s.direction !== 'sendrecv') continue;
    out.set(s.mid, { trackId: s.trackId, streamId: s.streamId, kind: s.kind });
  }
  return out;
}

/**
 * The largest frame and rate the remote side asks of what we send in section `mid`, from
 * VP8's fmtp (RFC 7741: `max-fs` in 16x16 macroblocks, `max-fr` in frames a second):
 * {maxFs, maxFr} (null when not given), or null without such a section.
 */
export function videoLimits(sdp, mid) {
  const parts = String(sdp || '').split(/\r?\n(?=m=)/).slice(1);
  for (const part of parts) {
    if (!part.startsWith('m=video')) continue;
    const lines = part.split(/\r?\n/);
    if (!lines.includes(`a=mid:${mid}`)) continue;
    const vp8 = new Set();
    for (const line of lines) {
      const m = /^a=rtpmap:(\d+) VP8\//i.exec(line);
      if (m) vp8.add(m[1]);
    }
    const limits = { maxFs: null, maxFr: null };
    for (const line of lines) {
      const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (!m || !vp8.has(m[1])) continue;
      for (const pair of m[2].split(';')) {
        const [key, value] = pair.trim().split('=');
        const n = Number(value);
        if (!(n > 0)) continue;
        if (key === 'max-fs') limits.maxFs = n;
        else if (key === 'max-fr') limits.maxFr = n;
      }
    }
    return limits;
  }
  return null;
}
