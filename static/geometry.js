// The page's pure geometry, as ferkit computes it (blazeface.py, boxes.py,
// tracking.py, smoothing.py): anchors, box overlap, weighted NMS, the
// windows a photo is searched in, the face the page follows and its
// readings averaged in time. No DOM and no model here, so Node's own test
// runner tests it (tests/js/); the numbers come from Python (/api/health's
// constants, ferkit/vision/page_constants.py).

import { rint } from "./pixels.js";

// Anchor centres in [0, 1], in the order of the model's outputs (blazeface.anchors).
export function anchors({ size, strides, twoPerCell }) {
  const out = [];
  let layer = 0;
  while (layer < strides.length) {
    let same = layer, perCell = 0;
    while (same < strides.length && strides[same] === strides[layer]) { same++; perCell += twoPerCell ? 2 : 1; }
    const cells = size / strides[layer];
    for (let y = 0; y < cells; y++) for (let x = 0; x < cells; x++)
      for (let k = 0; k < perCell; k++) out.push([Math.fround((x + 0.5) / cells), Math.fround((y + 0.5) / cells)]);
    layer = same;
  }
  return out;
}

// Intersection over union of two [x0, y0, x1, y1] boxes (boxes.iou); 0 for an empty union.
export function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h;
  return union > 0 ? (w * h) / union : 0;
}

// The same for [x, y, w, h] boxes (boxes.xywh_iou).
export function overlap(a, b) {
  return iou([a[0], a[1], a[0] + a[2], a[1] + a[3]], [b[0], b[1], b[0] + b[2], b[1] + b[3]]);
}

// MediaPipe's weighted NMS (blazeface.weighted_nms): the best box and those
// overlapping it by more than nmsIou, averaged by score. found: [{box, points, score}].
export function weightedNms(found, nmsIou) {
  const sorted = [...found].sort((p, q) => q.score - p.score);
  const faces = [];
  let remaining = sorted;
  while (remaining.length) {
    const top = remaining[0];
    const merged = remaining.filter((f) => iou(f.box, top.box) > nmsIou);
    remaining = remaining.filter((f) => iou(f.box, top.box) <= nmsIou);
    const total = merged.reduce((s, f) => s + f.score, 0);
    const box = [0, 0, 0, 0], points = top.points.map(() => [0, 0]);
    for (const f of merged) {
      for (let i = 0; i < 4; i++) box[i] += f.score * f.box[i];
      f.points.forEach((p, i) => { points[i][0] += f.score * p[0]; points[i][1] += f.score * p[1]; });
    }
    faces.push({ box: box.map((v) => v / total), points: points.map(([x, y]) => [x / total, y / total]), score: top.score });
  }
  return faces;
}

// blazeface.inside_none: no face lying mostly inside a larger one (a window's eye taken for a face).
export function insideNone(faces, share = 0.5) {
  const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);
  const kept = [];
  for (const face of [...faces].sort((p, q) => area(q.box) - area(p.box))) {
    const b = face.box, own = Math.max(area(b), 1e-9);
    const inside = kept.some(({ box: k }) =>
      (Math.max(0, Math.min(b[2], k[2]) - Math.max(b[0], k[0])) * Math.max(0, Math.min(b[3], k[3]) - Math.max(b[1], k[1]))) / own > share);
    if (!inside) kept.push(face);
  }
  return kept.sort((p, q) => q.score - p.score);
}

// blazeface.tiles: half-overlapping square windows over the image, [x, y] of each.
export function tiles(width, height, side) {
  const starts = (length) => {
    if (length <= side) return [0];
    const count = Math.ceil((length - side) / (side / 2)) + 1;
    return Array.from({ length: count }, (_, i) => rint((i * (length - side)) / (count - 1)));
  };
  const out = [];
  for (const y of starts(height)) for (const x of starts(width)) out.push([x, y]);
  return out;
}

// The face to follow among faces ([{box: [x, y, w, h]}]): the one that
// overlaps the followed box most (at least minIou, tracking.TRACK_IOU), else
// the largest; null when there is none.
export function follow(faces, followedBox, minIou) {
  let best = null, score = minIou;
  if (followedBox) for (const f of faces) { const o = overlap(f.box, followedBox); if (o >= score) { best = f; score = o; } }
  return best || faces.reduce((big, f) => (!big || f.box[2] * f.box[3] > big.box[2] * big.box[3] ? f : big), null);
}

// One step of the followed face's probabilities averaged in time
// (smoothing.Smoother): average {at, probabilities} or null, now in ms.
// Returns the new average; it starts afresh for another face, another set
// of classes, or after forgetAfter time constants unseen.
export function smoothStep(average, probabilities, now, sameFace, { timeConstantMs, forgetAfter }) {
  const fresh = !average || !sameFace || !(now - average.at >= 0 && now - average.at <= forgetAfter * timeConstantMs) ||
    Object.keys(probabilities).some((c) => !(c in average.probabilities));
  const weight = fresh ? 1 : 1 - Math.exp(-(now - average.at) / timeConstantMs);
  const mean = {};
  for (const c of Object.keys(probabilities))
    mean[c] = fresh ? probabilities[c] : average.probabilities[c] + weight * (probabilities[c] - average.probabilities[c]);
  return { at: now, probabilities: mean };
}

// Black or white text on an RGB colour, whichever reads (drawing.DARK_INK_ABOVE).
export function inkOn(rgb, darkAbove) {
  return rgb[0] + rgb[1] + rgb[2] > darkAbove ? "#000" : "#fff";
}

// A face's full-pass detection ({box: [x, y, w, h], points}) moved as its
// refit moved from first to now (blazeface.moved_with): the box by the refit
// box's shift of centre and change of side, each keypoint by its refit
// keypoint's shift, so a followed face keeps the full pass's geometry.
export function movedWith(detection, first, now) {
  const [fx, fy, fw, fh] = first.box, [nx, ny, nw, nh] = now.box;
  const scale = nw / Math.max(fw, 1);
  const [x, y, w, h] = detection.box;
  const cx = x + w / 2 + (nx + nw / 2) - (fx + fw / 2), cy = y + h / 2 + (ny + nh / 2) - (fy + fh / 2);
  const sw = w * scale, sh = h * scale;
  return {
    box: [rint(cx - sw / 2), rint(cy - sh / 2), rint(sw), rint(sh)],
    points: detection.points.map(([px, py], k) => [px + now.points[k][0] - first.points[k][0],
                                                   py + now.points[k][1] - first.points[k][1]]),
  };
}

// A box [x0, y0, x1, y1] cut to a width x height frame, as the integer
// [x, y, w, h] the detector gives (blazeface.in_frame); null where less than a pixel is left.
export function inFrame([bx0, by0, bx1, by1], width, height) {
  const x0 = Math.max(0, bx0), y0 = Math.max(0, by0), x1 = Math.min(width, bx1), y1 = Math.min(height, by1);
  return x1 - x0 < 1 || y1 - y0 < 1 ? null : [rint(x0), rint(y0), rint(x1 - x0), rint(y1 - y0)];
}
