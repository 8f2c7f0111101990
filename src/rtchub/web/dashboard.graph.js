// Quality graphs of the dashboard: one small canvas per peer, drawn from the quality
// monitor's samples ({at, score, loss, jitter, rtt, bitrate}). No library: a line for the
// score (0-100) over the dashboard's window, loss as bars underneath.

const COLORS = { score: "#3ddc97", loss: "#e5484d", grid: "#2b323c", text: "#9aa3ad" };

/** A canvas showing `samples` over the last `windowSeconds` before `now` (Unix seconds). */
export function qualityGraph(samples, now, windowSeconds) {
  const canvas = document.createElement("canvas");
  canvas.className = "graph";
  const width = 220, height = 54, ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  for (const y of [0.5, height / 2, height - 0.5]) {
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
  }
  const x = (at) => width - ((now - at) / windowSeconds) * width;
  const timed = samples.filter((s) => typeof s.at === "number" && now - s.at <= windowSeconds);
  ctx.fillStyle = COLORS.loss;
  for (const s of timed) {
    if (typeof s.loss === "number" && s.loss > 0) {
      const h = Math.min(height, (s.loss / 20) * height);   // 20 % loss fills the height
      ctx.fillRect(x(s.at) - 1, height - h, 2, h);
    }
  }
  ctx.strokeStyle = COLORS.score;
  ctx.lineWidth = 1.6;
  ctx.beginPath();
  let drawing = false;
  for (const s of timed) {
    if (typeof s.score !== "number") { drawing = false; continue; }
    const px = x(s.at), py = height - (Math.max(0, Math.min(100, s.score)) / 100) * (height - 2) - 1;
    if (drawing) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    drawing = true;
  }
  ctx.stroke();
  canvas.setAttribute("role", "img");
  const last = timed[timed.length - 1];
  canvas.setAttribute("aria-label", last && typeof last.score === "number"
    ? `quality score ${Math.round(last.score)} of 100` : "no quality samples");
  return canvas;
}
