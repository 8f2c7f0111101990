// Where the tiles go. Pure functions of the tile count and the stage size; app.ui.js
// applies them. One other person: they fill the stage and you are a small picture in
// a corner ("pip"). Otherwise a grid whose tiles are as large as possible, between 16:9
// and 4:3 on a wide stage (cameras are wide: little of the picture is cut) and down to
// 3:4 on a tall one (a phone held upright, where 2 columns beat a thin stack).

const WIDEST = 16 / 9;

/** Pick the column count that gives the biggest 16:9 tiles in a box (the recording's grid). */
export function bestGrid(n, width, height, gap = 12) {
  let best = { cols: 1, w: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols += 1) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * 16 / 9);
    if (w > best.w) best = { cols, w };
  }
  return best;
}

/**
 * The grid for `n` tiles in a `width` x `height` stage: {cols, rows, w, h}, each tile's
 * shape between 16:9 and 4:3 (3:4 on a tall stage), chosen for the largest tiles (fewer
 * empty cells on ties).
 */
export function fitTiles(n, width, height, gap = 12) {
  const count = Math.max(1, n);
  const tallest = height > width ? 3 / 4 : 4 / 3;
  let best = null;
  for (let cols = 1; cols <= count; cols += 1) {
    const rows = Math.ceil(count / cols);
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = (height - gap * (rows - 1)) / rows;
    if (cellW <= 0 || cellH <= 0) continue;
    const shape = Math.min(WIDEST, Math.max(tallest, cellW / cellH));
    const w = Math.min(cellW, cellH * shape);
    const h = w / shape;
    const area = w * h;
    const empty = cols * rows - count;
    if (!best || area > best.area * 1.001 || (area > best.area * 0.999 && empty < best.empty)) {
      best = { cols, rows, w: Math.floor(w), h: Math.floor(h), area, empty };
    }
  }
  return best || { cols: 1, rows: 1, w: 0, h: 0, area: 0, empty: 0 };
}

/** 'solo' (only you), 'pip' (you and one other) or 'grid'. */
export function layoutFor(n) {
  if (n <= 1) return 'solo';
  return n === 2 ? 'pip' : 'grid';
}
