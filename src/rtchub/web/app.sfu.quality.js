// SFU mode: simulcast. Our camera goes out as three layers (q, h, f: a quarter, half and
// the full captured size, lowest first, as the server maps low / medium / high to them);
// a screen share goes out as one. The server forwards each of us one layer per track and
// starts everyone low: we ask for the quality our layout can show (`set_quality`), which
// is the most the server sends us (its adaptive quality may send less, never more).

/** The camera's simulcast encodings (docs/calls.md "Simulcast"). Their bitrates add up to
 * 2.15 Mbps, under the server's default video cap (2.5 Mbps, VIDEO_MAX_BITRATE) that its
 * answer's b=AS/b=TIAS carries; a camera below 540 lines gives fewer layers (Chromium
 * drops those it finds too small). */
export const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 },
];

/** The quality to ask for each camera we receive, from how many we show at once. */
export function qualityFor(cameras) {
  if (cameras <= 1) return 'high';
  if (cameras <= 4) return 'medium';
  return 'low';
}

/**
 * Ask for the quality of every track others publish, when it differs from what we asked
 * last: cameras by how many there are, screens high. `asked` (track_id -> quality) is
 * the session's memory of it; tracks that ended are forgotten.
 */
export function askQualities(tracks, myId, asked, send) {
  const theirs = [...tracks.values()].filter((t) => t.publisher !== myId && t.kind === 'video');
  const cameras = theirs.filter((t) => t.source !== 'screen').length;
  for (const id of [...asked.keys()]) if (!tracks.has(id)) asked.delete(id);
  for (const t of theirs) {
    const quality = t.source === 'screen' ? 'high' : qualityFor(cameras);
    if (asked.get(t.track_id) === quality) continue;
    asked.set(t.track_id, quality);
    send({ type: 'set_quality', track_id: t.track_id, quality });
  }
}
