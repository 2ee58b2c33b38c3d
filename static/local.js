// In-browser inference: BlazeFace and the emotion model on onnxruntime-web
// (WebGPU where the browser has it, else WebAssembly with SIMD and threads),
// so camera frames and dropped photos never leave the browser. The same
// steps as ferkit/vision/blazeface.py and ferkit/vision/crops.py, on the image's own
// pixels with OpenCV's resampling (pixels.js): letterbox, anchors, decoding,
// weighted NMS, the windows a photo is searched in, a crop framed from the
// keypoints and turned so the eyes are level, 48x48 grey, flip TTA. So a
// photo's probabilities here are emotions.py's (tests/test_serve.py).

import { anchors, inFrame, insideNone, movedWith, overlap, tiles, weightedNms } from "/static/geometry.js";
import { resizeArea, resizeLinear, rint, toGray, warpAffine } from "/static/pixels.js";

// The numbers shared with Python (ferkit/vision/page_constants.py, sent in
// /api/health's constants), set by createLocalAnalyser: BlazeFace's two
// passes (blazeface.py's close-up pass: where the full-range model finds no
// face, the short-range one sees the picture at 1 / zoomOut of its side),
// its thresholds, how photos are searched (detectors.py's TILE_SIDE,
// blazeface.py's PHOTO_MAX_SIDE), and crops.py's framing.
let DETECTOR, CLOSE_UP, MIN_SCORE, NMS_IOU, RAW_SCORE_LIMIT, TILE_SIDE, PHOTO_MAX_SIDE;
let ALIGN_SCALE, ALIGN_OFFSET, FACE, KEYPOINTS;
// A camera's faces: the full pass every DETECT_EVERY frames, each face
// followed in between by the short-range model in a window around it
// (detectors.DetectEvery, blazeface.BlazeFace.refit).
// Its faces are read in VIDEO_TTA ("none": one view; smoothing.VIDEO_TTA).
let DETECT_EVERY, REFIT_WINDOW, REFIT_IOU, VIDEO_TTA;

function configure({ detector, crop, follow }) {
  ({ detectEvery: DETECT_EVERY, refitWindow: REFIT_WINDOW, refitIou: REFIT_IOU, videoTta: VIDEO_TTA } = follow);
  ({ full: DETECTOR, closeUp: CLOSE_UP, minScore: MIN_SCORE, nmsIou: NMS_IOU, rawScoreLimit: RAW_SCORE_LIMIT,
     tileSide: TILE_SIDE, photoMaxSide: PHOTO_MAX_SIDE } = detector);
  ({ alignScale: ALIGN_SCALE, alignOffset: ALIGN_OFFSET, face: FACE, keypoints: KEYPOINTS } = crop);
}

// RGB in [-1, 1] as ferkit computes it, in float32: v / 127.5 - 1.
const UNIT = Float32Array.from({ length: 256 }, (_, v) => Math.fround(Math.fround(v / 127.5) - 1));

// A window of an RGBA image, copied (side by side, or side alone for a
// square), with the canvas it lies on, if any, and where.
function windowOf(image, x, y, side, sideY = side) {
  const w = Math.min(side, image.width - x), h = Math.min(sideY, image.height - y);
  const data = new Uint8Array(w * h * 4);
  for (let row = 0; row < h; row++)
    data.set(image.data.subarray(((y + row) * image.width + x) * 4, ((y + row) * image.width + x + w) * 4), row * w * 4);
  return { data, width: w, height: h, canvas: image.canvas, sx: (image.sx || 0) + x, sy: (image.sy || 0) + y };
}

function faceSize(points) {
  const [r, l, , mouth] = points;
  const eyes = [(r[0] + l[0]) / 2, (r[1] + l[1]) / 2];
  return (Math.hypot(l[0] - r[0], l[1] - r[1]) + Math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1])) / 2;
}

// faces.face_pixels: any square grey crop to 48x48, by area when shrinking.
function facePixels(crop, side) {
  return side >= FACE ? resizeArea(crop, side, side, 1, FACE, FACE) : resizeLinear(crop, side, side, 1, FACE, FACE);
}

// faces.align_face: the 48x48 face framed from its keypoints and turned so the eyes are level.
function alignFace(gray, width, height, points) {
  const size = faceSize(points);
  const [r, l] = points;
  const angle = Math.atan2(l[1] - r[1], l[0] - r[0]);
  const c = Math.cos(angle), s = Math.sin(angle);
  const [dx, dy] = ALIGN_OFFSET;
  const cx = (r[0] + l[0]) / 2 + size * (c * dx - s * dy);
  const cy = (r[1] + l[1]) / 2 + size * (s * dx + c * dy);
  const side = Math.max(1, rint(size * ALIGN_SCALE));
  const toSource = [[c, -s, cx - (c * side) / 2 + (s * side) / 2], [s, c, cy - (s * side) / 2 - (c * side) / 2]];
  return facePixels(warpAffine(gray, width, height, toSource, side, side), side);
}

function mirrored(face) {
  const out = new Float32Array(FACE * FACE);
  for (let y = 0; y < FACE; y++) for (let x = 0; x < FACE; x++) out[y * FACE + x] = face[y * FACE + FACE - 1 - x];
  return out;
}

// onnxruntime-web with WebGPU where the browser offers an adapter (and
// ?backend=wasm does not ask otherwise), else WebAssembly.
async function runtime() {
  const wanted = new URLSearchParams(self.location.search).get("backend");
  if (wanted !== "wasm" && self.navigator.gpu) {
    const adapter = await self.navigator.gpu.requestAdapter().catch(() => null);
    if (adapter) {
      const ort = await import("/ort/ort.webgpu.min.mjs");
      ort.env.wasm.wasmPaths = "/ort/";
      return { ort, providers: ["webgpu", "wasm"], backend: "WebGPU" };
    }
  }
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  return { ort, providers: ["wasm"], backend: "WebAssembly" };
}

// classes: the model's class names, in output order; constants: /api/health's
// (the numbers shared with Python); modelUrl: an emotion model the server
// offers (its own by default).
export async function createLocalAnalyser(classes, constants, modelUrl = "/api/model.onnx") {
  configure(constants);
  const { ort, providers, backend } = await runtime();
  // Threads need cross-origin isolation, which serve.py's headers give.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const options = { executionProviders: providers, graphOptimizationLevel: "all" };
  // One after the other: WebGPU refuses a session while another is being created.
  // The detectors on one thread a run: small models, for which splitting
  // layers over threads costs more than it gives (as ferkit's BlazeFace).
  const detectorOptions = { ...options, intraOpNumThreads: 1 };
  const detector = await ort.InferenceSession.create(DETECTOR.url, detectorOptions);
  const closeUp = await ort.InferenceSession.create(CLOSE_UP.url, detectorOptions);
  const model = await ort.InferenceSession.create(modelUrl, options);
  const passes = { full: { net: detector, spec: DETECTOR, grid: anchors(DETECTOR), zoomOut: 1 },
                   closeUp: { net: closeUp, spec: CLOSE_UP, grid: anchors(CLOSE_UP), zoomOut: CLOSE_UP.zoomOut } };
  const grab = new OffscreenCanvas(1, 1);
  const grabCtx = grab.getContext("2d", { willReadFrequently: true });
  const square = new OffscreenCanvas(DETECTOR.size, DETECTOR.size);
  const squareCtx = square.getContext("2d", { willReadFrequently: true });
  squareCtx.imageSmoothingQuality = "high";

  // The letterbox's picture, nw x nh RGBA: by OpenCV's arithmetic (exact),
  // or, for a live frame, by the canvas, which does in 1 ms what takes
  // JavaScript 15 (a 640x640 frame on 2 cores) at the cost of equality.
  function shrunk(image, nw, nh, exact, grows) {
    const { data, width, height } = image;
    if (exact || !image.canvas) {
      // As ferkit's letterbox: area to shrink, linear to grow.
      return grows ? resizeLinear(data, width, height, 4, nw, nh) : resizeArea(data, width, height, 4, nw, nh);
    }
    squareCtx.clearRect(0, 0, nw, nh);
    squareCtx.drawImage(image.canvas, image.sx || 0, image.sy || 0, width, height, 0, 0, nw, nh);
    return squareCtx.getImageData(0, 0, nw, nh).data;
  }

  // blazeface.BlazeFace.candidates: one pass, letterboxed, in the image's pixels.
  async function candidates(image, x0 = 0, y0 = 0, exact = true, { net, spec, grid, zoomOut } = passes.full) {
    const { width, height } = image;
    const size = spec.size;
    const scale = size / (Math.max(width, height) * zoomOut);
    const nw = Math.max(1, rint(width * scale)), nh = Math.max(1, rint(height * scale));
    const resized = shrunk(image, nw, nh, exact || scale >= 1, scale >= 1);
    const padX = Math.floor((size - nw) / 2), padY = Math.floor((size - nh) / 2);
    const input = new Float32Array(size * size * 3); // Padding is 0, as ferkit's letterbox pads.
    for (let y = 0; y < nh; y++)
      for (let x = 0, i = y * nw * 4, j = ((y + padY) * size + padX) * 3; x < nw; x++, i += 4, j += 3) {
        input[j] = UNIT[resized[i]]; input[j + 1] = UNIT[resized[i + 1]]; input[j + 2] = UNIT[resized[i + 2]];
      }
    const outputs = await net.run({ [net.inputNames[0]]: new ort.Tensor("float32", input, [1, size, size, 3]) });
    const [regressors, logits] = net.outputNames.map((n) => outputs[n]).sort((a, b) => b.dims[2] - a.dims[2]);
    const found = [];
    for (let k = 0; k < grid.length; k++) {
      const score = 1 / (1 + Math.exp(-Math.max(-RAW_SCORE_LIMIT, Math.min(RAW_SCORE_LIMIT, logits.data[k]))));
      if (score <= MIN_SCORE) continue;
      const r = regressors.data.subarray(16 * k, 16 * k + 16);
      if (r[2] <= 0 || r[3] <= 0) continue;
      const ax = grid[k][0] * size, ay = grid[k][1] * size;
      const cx = r[0] + ax, cy = r[1] + ay;
      const back = (x, y) => [(x - padX) / scale + x0, (y - padY) / scale + y0];
      const [bx0, by0] = back(cx - r[2] / 2, cy - r[3] / 2), [bx1, by1] = back(cx + r[2] / 2, cy + r[3] / 2);
      found.push({ box: [bx0, by0, bx1, by1], score, points: KEYPOINTS.map((_, i) => back(r[4 + 2 * i] + ax, r[5 + 2 * i] + ay)) });
    }
    return found;
  }

  // blazeface.BlazeFace.__call__: thorough (photos) adds the windows, on a
  // copy no larger than PHOTO_MAX_SIDE.
  async function detect(image, thorough, exact) {
    const { width, height } = image;
    if (thorough && Math.max(width, height) > PHOTO_MAX_SIDE) {
      const factor = PHOTO_MAX_SIDE / Math.max(width, height);
      const sw = Math.max(1, rint(width * factor)), sh = Math.max(1, rint(height * factor));
      const small = { data: resizeArea(image.data, width, height, 4, sw, sh), width: sw, height: sh };
      return (await detect(small, true, true)).map((f) => ({ box: f.box.map((v) => rint(v / factor)),
                                                        points: f.points.map(([x, y]) => [x / factor, y / factor]) }));
    }
    let found = await candidates(image, 0, 0, exact);
    if (!found.length) found = await candidates(image, 0, 0, exact, passes.closeUp);
    if (thorough && Math.max(width, height) > TILE_SIDE) {
      for (const [x, y] of tiles(width, height, TILE_SIDE)) {
        // A face cut by a window's inner edge lies whole in the next window: drop the cut part.
        const inner = (await candidates(windowOf(image, x, y, TILE_SIDE), x, y)).filter(({ box }) =>
          (x === 0 || box[0] > x + 2) && (y === 0 || box[1] > y + 2) &&
          (x + TILE_SIDE >= width || box[2] < x + TILE_SIDE - 2) && (y + TILE_SIDE >= height || box[3] < y + TILE_SIDE - 2));
        found = found.concat(inner);
      }
    }
    const faces = [];
    for (const f of insideNone(weightedNms(found, NMS_IOU))) {
      const box = inFrame(f.box, width, height);
      if (box) faces.push({ box, points: f.points });
    }
    // Sorted by box, as ferkit sorts them: left to right.
    return faces.sort((p, q) => p.box[0] - q.box[0] || p.box[1] - q.box[1] || p.box[2] - q.box[2] || p.box[3] - q.box[3]);
  }

  // blazeface.BlazeFace.refit: the face near box ([x, y, w, h]) found again
  // by the short-range model in a window REFIT_WINDOW times its side, or null.
  const refitPass = { ...passes.closeUp, zoomOut: 1 };
  async function refit(image, box) {
    const { width, height } = image;
    const [x, y, bw, bh] = box;
    const side = REFIT_WINDOW * Math.max(bw, bh);
    const x0 = Math.trunc(Math.max(0, x + bw / 2 - side / 2)), y0 = Math.trunc(Math.max(0, y + bh / 2 - side / 2));
    const x1 = Math.trunc(Math.min(width, x + bw / 2 + side / 2)), y1 = Math.trunc(Math.min(height, y + bh / 2 + side / 2));
    if (x1 - x0 < 8 || y1 - y0 < 8) return null;
    const found = await candidates(windowOf(image, x0, y0, x1 - x0, y1 - y0), x0, y0, false, refitPass);
    let best = null, bestIou = REFIT_IOU;
    for (const f of weightedNms(found, NMS_IOU)) {
      const b = inFrame(f.box, width, height);
      if (!b) continue;
      const o = overlap(b, box);
      if (o >= bestIou) { best = { box: b, points: f.points }; bestIou = o; }
    }
    return best;
  }

  // detectors.DetectEvery for the camera: the full pass every DETECT_EVERY
  // frames (and after a frame with no face, or where a face is lost), the
  // faces followed in between; `following` carries them from frame to frame.
  let following = null; // {faces: [{detection, first, last}], since}
  async function detectLive(image, exact) {
    if (following && following.since + 1 < DETECT_EVERY) {
      const moved = [], faces = [];
      for (const face of following.faces) {
        const now = await refit(image, face.last.box);
        if (!now) break;
        const m = movedWith(face.detection, face.first, now);
        const [x, y, w, h] = m.box;
        const inside = inFrame([x, y, x + w, y + h], image.width, image.height); // As the full pass gives boxes.
        if (!inside) break;
        moved.push({ box: inside, points: m.points });
        faces.push({ ...face, last: now });
      }
      if (faces.length === following.faces.length) {
        following = { faces, since: following.since + 1 };
        return moved;
      }
    }
    const found = await detect(image, false, exact);
    following = null;
    if (found.length && DETECT_EVERY > 1) {
      const faces = [];
      for (const detection of found) {
        const first = await refit(image, detection.box);
        if (!first) break;
        faces.push({ detection, first, last: first });
      }
      if (faces.length === found.length) following = { faces, since: 0 };
    }
    return found;
  }

  // {faces, milliseconds} for one RGBA image ({data, width, height}, and
  // the canvas holding it, if any), in the records serve.py gives.
  // thorough: a photo, searched in windows too; exact: the detector's input
  // shrunk by OpenCV's arithmetic too (always for photos), so the faces are
  // emotions.py's; a live frame's is shrunk by the canvas. The crops are
  // OpenCV's arithmetic either way. video: a camera's frame, the next of
  // those before it, whose faces are followed between full passes (detectLive).
  async function analysePixels(image, { thorough = false, exact = thorough, video = false } = {}) {
    const started = performance.now();
    const found = video ? await detectLive(image, exact) : await detect(image, thorough, exact);
    const faces = [];
    if (found.length) {
      const gray = toGray(image.data, image.width, image.height, 4);
      // As inference.Predictor's flip TTA: every face, then every face mirrored
      // (a frame, not a photo, in VIDEO_TTA: "none", the faces alone, as EmotionReader.read reads one).
      const views = !thorough && VIDEO_TTA === "none" ? 1 : 2;
      const crops = found.map((f) => Float32Array.from(alignFace(gray, image.width, image.height, f.points)));
      const batch = new Float32Array(views * found.length * FACE * FACE);
      crops.forEach((crop, i) => {
        batch.set(crop, i * FACE * FACE);
        if (views === 2) batch.set(mirrored(crop), (found.length + i) * FACE * FACE);
      });
      const out = await model.run({ [model.inputNames[0]]: new ort.Tensor("float32", batch, [views * found.length, FACE, FACE, 1]) });
      const p = out[model.outputNames[0]].data;
      const n = classes.length;
      found.forEach((f, i) => {
        const probabilities = {};
        classes.forEach((name, j) => {
          probabilities[name] = views === 2 ? (p[i * n + j] + p[(found.length + i) * n + j]) / 2 : p[i * n + j];
        });
        const emotion = classes.reduce((a, b) => (probabilities[a] >= probabilities[b] ? a : b));
        const keypoints = Object.fromEntries(KEYPOINTS.map((name, k) => [name, f.points[k]]));
        faces.push({ face: i, box: f.box, keypoints, probabilities, emotion });
      });
    }
    const milliseconds = Math.round(10 * (performance.now() - started)) / 10;
    return { width: image.width, height: image.height, faces, milliseconds, latency: milliseconds };
  }

  // The pixels of a video, an image or a bitmap, as drawn at its own size.
  function pixelsOf(source, width, height, opaque = false) {
    if (grab.width !== width || grab.height !== height) { grab.width = width; grab.height = height; }
    grabCtx.clearRect(0, 0, width, height);
    grabCtx.drawImage(source, 0, 0);
    const data = grabCtx.getImageData(0, 0, width, height).data;
    // A video's frame is opaque: nothing to composite. (No HTMLVideoElement in a worker, where frames come as bitmaps.)
    if (opaque || (typeof HTMLVideoElement !== "undefined" && source instanceof HTMLVideoElement))
      return { data, width, height, canvas: grab };
    // A transparent photo is seen on white, as ferkit's read_image composites it.
    for (let i = 3; i < data.length; i += 4)
      if (data[i] < 255) {
        const a = data[i];
        for (let c = 1; c <= 3; c++) data[i - c] = Math.round((data[i - c] * a + 255 * (255 - a)) / 255);
        data[i] = 255;
      }
    return { data, width, height, canvas: grab };
  }

  return {
    detector: "BlazeFace full range",
    backend,
    threads: ort.env.wasm.numThreads,
    // source: a video, an image or a bitmap; options as analysePixels'.
    async analyse(source, width, height, options = {}) {
      return analysePixels(pixelsOf(source, width, height, options.video), options);
    },
  };
}
