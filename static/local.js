// In-browser inference: BlazeFace and the emotion model on onnxruntime-web
// (WebAssembly with SIMD and threads), so camera frames never leave the
// browser. The same steps as ferkit/blazeface.py and ferkit/faces.py:
// letterbox, anchors, decoding, weighted NMS, a crop framed from the
// keypoints and turned so the eyes are level, 48x48 grey, flip TTA. The
// browser's own resampling stands in for OpenCV's, so probabilities are
// close to the server's, not equal.

const MIN_SCORE = 0.5;
const NMS_IOU = 0.3;
const DETECTOR = { url: "/models/blazeface_full_range.onnx", size: 192, strides: [4], twoPerCell: false };
// faces.py's ALIGN_SCALE and ALIGN_OFFSET, measured on FER2013 (report, section 7).
const ALIGN_SCALE = 2.79;
const ALIGN_OFFSET = [0.0, 0.286];
const KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"];

function anchors({ size, strides, twoPerCell }) {
  const out = [];
  let layer = 0;
  while (layer < strides.length) {
    let same = layer, perCell = 0;
    while (same < strides.length && strides[same] === strides[layer]) { same++; perCell += twoPerCell ? 2 : 1; }
    const cells = size / strides[layer];
    for (let y = 0; y < cells; y++) for (let x = 0; x < cells; x++)
      for (let k = 0; k < perCell; k++) out.push([(x + 0.5) / cells, (y + 0.5) / cells]);
    layer = same;
  }
  return out;
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  return inter / Math.max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-9);
}

// MediaPipe's weighted NMS: the best box and those overlapping it, averaged by score.
function weightedNms(found) {
  found.sort((p, q) => q.score - p.score);
  const faces = [];
  let remaining = found;
  while (remaining.length) {
    const top = remaining[0];
    const merged = remaining.filter((f) => iou(f.box, top.box) > NMS_IOU);
    remaining = remaining.filter((f) => iou(f.box, top.box) <= NMS_IOU);
    const total = merged.reduce((s, f) => s + f.score, 0);
    const box = [0, 0, 0, 0], points = KEYPOINTS.map(() => [0, 0]);
    for (const f of merged) {
      const w = f.score / total;
      for (let i = 0; i < 4; i++) box[i] += w * f.box[i];
      f.points.forEach((p, i) => { points[i][0] += w * p[0]; points[i][1] += w * p[1]; });
    }
    faces.push({ box, points, score: top.score });
  }
  return faces;
}

function faceSize(points) {
  const [r, l, , mouth] = points;
  const eyes = [(r[0] + l[0]) / 2, (r[1] + l[1]) / 2];
  return (Math.hypot(l[0] - r[0], l[1] - r[1]) + Math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1])) / 2;
}

// classes: the model's class names, in output order; modelUrl: an emotion
// model the server offers (its own by default).
export async function createLocalAnalyser(classes, modelUrl = "/api/model.onnx") {
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  // Threads need cross-origin isolation, which serve.py's headers give.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const [detector, model] = await Promise.all([
    ort.InferenceSession.create(DETECTOR.url, options),
    ort.InferenceSession.create(modelUrl, options),
  ]);
  const grid = anchors(DETECTOR);
  const square = new OffscreenCanvas(DETECTOR.size, DETECTOR.size);
  const squareCtx = square.getContext("2d", { willReadFrequently: true });
  const face48 = new OffscreenCanvas(48, 48);
  const face48Ctx = face48.getContext("2d", { willReadFrequently: true });

  async function detect(source, width, height) {
    const size = DETECTOR.size;
    const scale = size / Math.max(width, height);
    const nw = Math.max(1, Math.round(width * scale)), nh = Math.max(1, Math.round(height * scale));
    const padX = Math.floor((size - nw) / 2), padY = Math.floor((size - nh) / 2);
    squareCtx.fillStyle = "#000";
    squareCtx.fillRect(0, 0, size, size);
    squareCtx.drawImage(source, padX, padY, nw, nh);
    const rgba = squareCtx.getImageData(0, 0, size, size).data;
    const input = new Float32Array(size * size * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4) {
      input[j++] = rgba[i] / 127.5 - 1; input[j++] = rgba[i + 1] / 127.5 - 1; input[j++] = rgba[i + 2] / 127.5 - 1;
    }
    const outputs = await detector.run({ [detector.inputNames[0]]: new ort.Tensor("float32", input, [1, size, size, 3]) });
    const [regressors, logits] = detector.outputNames.map((n) => outputs[n]).sort((a, b) => b.dims[2] - a.dims[2]);
    const found = [];
    for (let k = 0; k < grid.length; k++) {
      const score = 1 / (1 + Math.exp(-Math.max(-80, Math.min(80, logits.data[k]))));
      if (score <= MIN_SCORE) continue;
      const r = regressors.data.subarray(16 * k, 16 * k + 16);
      const ax = grid[k][0] * size, ay = grid[k][1] * size;
      const cx = r[0] + ax, cy = r[1] + ay;
      if (r[2] <= 0 || r[3] <= 0) continue;
      const back = (x, y) => [(x - padX) / scale, (y - padY) / scale];
      const [x0, y0] = back(cx - r[2] / 2, cy - r[3] / 2), [x1, y1] = back(cx + r[2] / 2, cy + r[3] / 2);
      found.push({ box: [x0, y0, x1, y1], score,
                   points: KEYPOINTS.map((_, i) => back(r[4 + 2 * i] + ax, r[5 + 2 * i] + ay)) });
    }
    return weightedNms(found).map((f) => {
      const x0 = Math.max(0, f.box[0]), y0 = Math.max(0, f.box[1]);
      const x1 = Math.min(width, f.box[2]), y1 = Math.min(height, f.box[3]);
      return { box: [Math.round(x0), Math.round(y0), Math.round(x1 - x0), Math.round(y1 - y0)], points: f.points };
    }).filter((f) => f.box[2] >= 1 && f.box[3] >= 1).sort((a, b) => a.box[0] - b.box[0]);
  }

  // The 48x48 grey face: a square framed from the keypoints, turned upright.
  function crop(source, points, mirror) {
    const size = faceSize(points);
    const [r, l] = points;
    const angle = Math.atan2(l[1] - r[1], l[0] - r[0]);
    const c = Math.cos(angle), s = Math.sin(angle);
    const eyes = [(r[0] + l[0]) / 2, (r[1] + l[1]) / 2];
    const cx = eyes[0] + size * (c * ALIGN_OFFSET[0] - s * ALIGN_OFFSET[1]);
    const cy = eyes[1] + size * (s * ALIGN_OFFSET[0] + c * ALIGN_OFFSET[1]);
    const k = 48 / (size * ALIGN_SCALE); // Output pixels per source pixel.
    face48Ctx.setTransform(1, 0, 0, 1, 0, 0);
    face48Ctx.fillStyle = "#808080";
    face48Ctx.fillRect(0, 0, 48, 48);
    face48Ctx.imageSmoothingQuality = "high";
    // out = k R(-angle) (p - centre) + 24, mirrored left-right for the flip view.
    const m = mirror ? -1 : 1;
    face48Ctx.setTransform(m * k * c, -k * s, m * k * s, k * c,
                           24 - m * k * (c * cx + s * cy), 24 - k * (-s * cx + c * cy));
    face48Ctx.drawImage(source, 0, 0);
    const rgba = face48Ctx.getImageData(0, 0, 48, 48).data;
    const grey = new Float32Array(48 * 48);
    for (let i = 0, j = 0; i < rgba.length; i += 4) grey[j++] = Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]);
    return grey;
  }

  return {
    detector: "BlazeFace full range",
    threads: ort.env.wasm.numThreads,
    // {faces, milliseconds} for one frame, in the records serve.py gives.
    async analyse(source, width, height) {
      const started = performance.now();
      const found = await detect(source, width, height);
      const faces = [];
      if (found.length) {
        const batch = new Float32Array(found.length * 2 * 48 * 48);
        found.forEach((f, i) => { batch.set(crop(source, f.points, false), 2 * i * 2304); batch.set(crop(source, f.points, true), (2 * i + 1) * 2304); });
        const out = await model.run({ [model.inputNames[0]]: new ort.Tensor("float32", batch, [2 * found.length, 48, 48, 1]) });
        const p = out[model.outputNames[0]].data;
        const n = classes.length;
        found.forEach((f, i) => {
          const probabilities = {};
          classes.forEach((name, j) => { probabilities[name] = (p[2 * i * n + j] + p[(2 * i + 1) * n + j]) / 2; });
          const emotion = classes.reduce((a, b) => (probabilities[a] >= probabilities[b] ? a : b));
          const keypoints = Object.fromEntries(KEYPOINTS.map((name, k) => [name, f.points[k]]));
          faces.push({ face: i, box: f.box, keypoints, probabilities, emotion });
        });
      }
      const milliseconds = Math.round(10 * (performance.now() - started)) / 10;
      return { width, height, faces, milliseconds, latency: milliseconds };
    },
  };
}
