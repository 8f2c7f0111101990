// The live dashboard: polls /dashboard/api/snapshot every second and redraws. Every value
// that a client chose (room ids, names) goes in with textContent, never as HTML.

import { qualityGraph } from "/dashboard.graph.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const short = (id) => (id.length > 12 ? `${id.slice(0, 8)}…` : id);

function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function figure(label, value, detail) {
  return el("div", { class: "figure" },
    el("span", { class: "label", text: label }),
    el("span", { class: "value", text: String(value) }),
    detail ? el("span", { class: "detail", text: detail }) : null);
}

function renderFigures(snap) {
  const node = snap.node || {}, cluster = snap.cluster || {};
  const people = snap.rooms.reduce((n, r) => n + r.members.length, 0);
  const clustered = cluster.backplane === "redis";
  $("figures").replaceChildren(
    figure("Node", node.id || "—", clustered
      ? `${cluster.nodes} node${cluster.nodes === 1 ? "" : "s"} · Redis ${cluster.connected ? "up" : "down"}`
      : "single node (in memory)"),
    figure("Connections", node.connections ?? 0, clustered ? `${cluster.connections ?? 0} in the cluster` : "WebSocket"),
    figure("Rooms", snap.rooms.length, `${people} member${people === 1 ? "" : "s"}`),
    figure("Voice", snap.streams.length, `${node.voice_receivers ?? 0} WebRTC · ${node.mp3_listeners ?? 0} MP3` +
      (clustered ? ` (cluster ${cluster.voice_receivers ?? 0} · ${cluster.mp3_listeners ?? 0})` : "")),
    figure("Pairings", snap.pairs.length, `${node.pair_sides ?? 0} sides connected` +
      (clustered ? ` (cluster ${cluster.pair_sides ?? 0})` : "")),
    figure("Match", snap.match.queue_size, `waiting · ${snap.match.rooms_active} active rooms`),
  );
}

function media(p) {
  const wrap = el("span", { class: "media" });
  for (const [on, name] of [[p.audio, "mic"], [p.video, "cam"], [p.screen, "screen"]]) {
    if (name === "screen" && !on) continue;
    wrap.append(el("span", { class: `tag ${on ? "on" : "off"}`, text: name }));
  }
  return wrap;
}

function lastQuality(samples) {
  const s = samples[samples.length - 1];
  if (!s) return "no samples yet";
  const parts = [];
  if (typeof s.score === "number") parts.push(`score ${Math.round(s.score)}`);
  if (typeof s.loss === "number") parts.push(`loss ${s.loss.toFixed(1)}%`);
  if (typeof s.jitter === "number") parts.push(`jitter ${Math.round(s.jitter)} ms`);
  if (typeof s.rtt === "number") parts.push(`rtt ${Math.round(s.rtt)} ms`);
  if (typeof s.bitrate === "number") parts.push(`${Math.round(s.bitrate)} kbps`);
  return parts.join(" · ");
}

function renderRoom(room, snap) {
  const head = el("div", { class: "room-head" },
    el("h3", { text: room.id }),
    el("span", { class: `badge ${room.topology}`, text: room.topology.toUpperCase() }),
    el("span", { class: "fine", text: `${room.members.length} member${room.members.length === 1 ? "" : "s"}` }),
    room.recording && room.recording !== "idle" ? el("span", { class: "badge rec", text: room.recording }) : null);
  const card = el("article", { class: "room", "data-room": room.id }, head);
  const quality = room.quality || {};
  const people = el("ul", { class: "people" });
  if (room.call) {
    for (const p of room.participants) {
      const samples = quality[p.id] || [];
      const row = el("li", { class: "person", "data-peer": p.id },
        el("div", { class: "who" },
          el("span", { class: "name", text: p.display_name !== p.id ? `${p.display_name} (${p.id})` : p.id }),
          room.speaker === p.id ? el("span", { class: "tag speak", text: "speaking" }) : null,
          media(p),
          el("span", { class: "fine", text: `joined ${ago(snap.at - p.joined_at)} ago` +
            (room.topology === "sfu" ? ` · receives ${p.receives.length}` : "") })));
      if (room.topology === "sfu") {
        row.append(el("div", { class: "quality" }, qualityGraph(samples, snap.at, snap.history_seconds),
          el("span", { class: "fine", text: lastQuality(samples) })));
      }
      people.append(row);
    }
  } else {
    for (const m of room.members) people.append(el("li", { class: "person" }, el("span", { class: "name", text: m })));
  }
  card.append(people);
  if (room.tracks.length) {
    const body = el("tbody");
    for (const t of room.tracks) {
      const layers = t.layers.length
        ? t.layers.map((l) => `${l.rid}${l.height ? ` ${l.height}p` : ""}${l.active === false ? " (off)" : ""}`).join(" · ")
        : "single";
      body.append(el("tr", {},
        el("td", { class: "mono", text: short(t.track_id), title: t.track_id }),
        el("td", { text: t.publisher }),
        el("td", { class: "nowrap", text: `${t.kind} · ${t.source}${t.muted ? " · muted" : ""}` }),
        el("td", { text: layers }),
        el("td", { class: "num", text: String(t.subscribers) })));
    }
    card.append(el("table", { class: "tracks" },
      el("thead", {}, el("tr", {}, ...["Track", "From", "Kind", "Layers", "Subs"].map((h) => el("th", { text: h })))),
      body));
  }
  return card;
}

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "empty", text: empty });
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: String(c) }))))));
}

function render(snap) {
  renderFigures(snap);
  $("rooms-count").textContent = String(snap.rooms.length);
  $("rooms").replaceChildren(...(snap.rooms.length
    ? snap.rooms.map((r) => renderRoom(r, snap))
    : [el("p", { class: "empty", text: "No rooms right now. They appear here as soon as someone joins." })]));
  $("streams-count").textContent = String(snap.streams.length);
  $("streams").replaceChildren(table(["Stream", "Live for", "WebRTC", "MP3"],
    snap.streams.map((s) => [s.name || short(s.stream_id), ago(snap.at - s.started_at), s.webrtc, s.mp3]),
    "No live voice streams."));
  $("pairs-count").textContent = String(snap.pairs.length);
  $("pairs").replaceChildren(table(["Pair", "A", "B", "Mailbox", "Expires in"],
    snap.pairs.map((p) => [short(p.app_id), p.side_a ? "●" : "○", p.side_b ? "●" : "○",
      `${p.waiting} msg`, ago(p.expires_at - snap.at)]),
    "No pairings."));
  $("match-count").textContent = String(snap.match.queue_size);
  const waiting = snap.match.queue.map((name) => el("li", { class: "tag on", text: name }));
  $("match").replaceChildren(waiting.length
    ? el("ul", { class: "queue" }, ...waiting)
    : el("p", { class: "empty", text: "Nobody is waiting." }),
  el("p", { class: "fine", text: `${snap.match.rooms_active} active rooms of two, ${snap.match.rooms_total} since start` }));
}

function feed(state, text) {
  $("feed").dataset.state = state;
  $("feed").querySelector(".t").textContent = text;
}

async function poll() {
  try {
    const response = await fetch("/dashboard/api/snapshot", { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { window.location.assign("/dashboard"); return; }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const snap = await response.json();
    render(snap);
    window.dashboard = { snapshot: snap };   // for tests and the curious
    feed("live", `Live · ${new Date(snap.at * 1000).toLocaleTimeString()}`);
  } catch (err) {
    feed("reconnecting", `Reconnecting… (${err.message})`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
