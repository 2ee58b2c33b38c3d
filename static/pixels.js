// OpenCV's uint8 image operations, bit for bit, for the page's in-browser
// path: ferkit reads faces with cv2 (cvtColor, resize with INTER_AREA and
// INTER_LINEAR, warpAffine with INTER_LINEAR and BORDER_REPLICATE), and a
// browser's canvas resamples its own way, which moved probabilities by up to
// 0.006. Each function follows OpenCV 4's fixed-point or float32 arithmetic
// and its rounding (half to even), and tests/test_pixels.py checks each
// against cv2 on random images, pixel for pixel. Images are interleaved
// Uint8Arrays, row after row, `channels` values a pixel.

const f32 = Math.fround;

// cvRound: nearest integer, halves to even (JavaScript's Math.round rounds them up).
export function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const clip = (v, lo, hi) => (v < lo ? lo : v > hi ? hi : v);

// cv2.cvtColor(rgb, COLOR_RGB2GRAY): 15-bit fixed-point luma (0.299, 0.587, 0.114).
export function toGray(pixels, width, height, channels = 4) {
  const gray = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < gray.length; i++, j += channels)
    gray[i] = (pixels[j] * 9798 + pixels[j + 1] * 19235 + pixels[j + 2] * 3735 + 16384) >> 15;
  return gray;
}

// OpenCV's computeResizeAreaTab: for each output column (or row), the
// source columns it covers and their float32 weights, as three typed arrays.
function areaTable(ssize, dsize) {
  const scale = 1 / (dsize / ssize);
  const out = [], source = [], weight = [];
  const add = (d, s, w) => { out.push(d); source.push(s); weight.push(w); };
  for (let d = 0; d < dsize; d++) {
    const fs1 = d * scale, fs2 = fs1 + scale;
    const cell = Math.min(scale, ssize - fs1);
    let s1 = Math.ceil(fs1), s2 = Math.floor(fs2);
    s2 = Math.min(s2, ssize - 1);
    s1 = Math.min(s1, s2);
    if (s1 - fs1 > 1e-3) add(d, s1 - 1, (s1 - fs1) / cell);
    for (let s = s1; s < s2; s++) add(d, s, 1 / cell);
    if (fs2 - s2 > 1e-3) add(d, s2, Math.min(Math.min(fs2 - s2, 1), cell) / cell);
  }
  return { out: Int32Array.from(out), source: Int32Array.from(source), weight: Float32Array.from(weight) };
}

// cv2.resize(..., INTER_AREA) for shrinking (both sides no larger than the
// source's). Float32Array stores round each sum to float32, as OpenCV's
// float accumulators do (each product is rounded first, with f32).
export function resizeArea(src, sw, sh, channels, dw, dh) {
  const scaleX = sw / dw, scaleY = sh / dh;
  if (scaleX < 1 || scaleY < 1) throw new Error("resizeArea only shrinks");
  const out = new Uint8Array(dw * dh * channels);
  if (Number.isInteger(scaleX) && Number.isInteger(scaleY)) {
    // OpenCV's fast path: plain block sums; 2x2 blocks round halves up (its SIMD code).
    const area = scaleX * scaleY, inverse = f32(1 / area), twoByTwo = scaleX === 2 && scaleY === 2;
    for (let y = 0; y < dh; y++)
      for (let x = 0; x < dw; x++)
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let v = 0; v < scaleY; v++)
            for (let u = 0; u < scaleX; u++) sum += src[((y * scaleY + v) * sw + x * scaleX + u) * channels + c];
          out[(y * dw + x) * channels + c] = twoByTwo ? (sum + 2) >> 2 : clip(rint(f32(sum * inverse)), 0, 255);
        }
    return out;
  }
  const xs = areaTable(sw, dw), ys = areaTable(sh, dh);
  const width = dw * channels, entries = xs.out.length;
  const to = xs.out.map((d) => d * channels), from = xs.source.map((s) => s * channels);
  const buf = new Float32Array(width), sum = new Float32Array(width);
  const store = (row) => { for (let i = 0; i < width; i++) out[row * width + i] = clip(rint(sum[i]), 0, 255); };
  let previous = ys.out[0];
  for (let j = 0; j < ys.out.length; j++) {
    const dy = ys.out[j], beta = ys.weight[j], row = ys.source[j] * sw * channels;
    buf.fill(0);
    if (channels === 4) {
      for (let k = 0; k < entries; k++) { // Unrolled: the letterbox's RGBA frames are most of the page's work.
        const d = to[k], s = row + from[k], alpha = xs.weight[k];
        buf[d] += f32(src[s] * alpha); buf[d + 1] += f32(src[s + 1] * alpha);
        buf[d + 2] += f32(src[s + 2] * alpha); buf[d + 3] += f32(src[s + 3] * alpha);
      }
    } else {
      for (let k = 0; k < entries; k++) {
        const d = to[k], s = row + from[k], alpha = xs.weight[k];
        for (let c = 0; c < channels; c++) buf[d + c] += f32(src[s + c] * alpha);
      }
    }
    if (dy !== previous) {
      store(previous);
      for (let i = 0; i < width; i++) sum[i] = beta * buf[i];
      previous = dy;
    } else {
      for (let i = 0; i < width; i++) sum[i] += f32(beta * buf[i]);
    }
  }
  store(previous);
  return out;
}

// OpenCV's linear resize coefficients: source index and 11-bit weights.
// Columns are clamped to the image; rows keep their weights (the row index is clamped instead).
function linearTable(ssize, dsize, clampWeights) {
  const scale = 1 / (dsize / ssize);
  const index = new Int32Array(dsize), w0 = new Int32Array(dsize), w1 = new Int32Array(dsize);
  for (let d = 0; d < dsize; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (clampWeights && s < 0) { f = 0; s = 0; }
    if (clampWeights && s >= ssize - 1) { f = 0; s = ssize - 1; }
    index[d] = s;
    w0[d] = rint(f32(1 - f) * 2048);
    w1[d] = rint(f * 2048);
  }
  return { index, w0, w1 };
}

// cv2.resize(..., INTER_LINEAR): fixed-point, as OpenCV's SIMD code rounds it.
export function resizeLinear(src, sw, sh, channels, dw, dh) {
  const xs = linearTable(sw, dw, true), ys = linearTable(sh, dh, false);
  const width = dw * channels;
  const rows = new Int32Array(sh * width); // Each source row resized across.
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < dw; x++) {
      const a = (y * sw + xs.index[x]) * channels, b = (y * sw + Math.min(xs.index[x] + 1, sw - 1)) * channels;
      for (let c = 0; c < channels; c++)
        rows[y * width + x * channels + c] = src[a + c] * xs.w0[x] + src[b + c] * xs.w1[x];
    }
  const out = new Uint8Array(dh * width);
  for (let y = 0; y < dh; y++) {
    const r0 = clip(ys.index[y], 0, sh - 1) * width, r1 = clip(ys.index[y] + 1, 0, sh - 1) * width;
    const b0 = ys.w0[y], b1 = ys.w1[y];
    for (let i = 0; i < width; i++)
      out[y * width + i] = clip(((((rows[r0 + i] >> 4) * b0) >> 16) + (((rows[r1 + i] >> 4) * b1) >> 16) + 2) >> 2, 0, 255);
  }
  return out;
}

// cv2.warpAffine(gray, M, (dw, dh), INTER_LINEAR | WARP_INVERSE_MAP,
// BORDER_REPLICATE) on one channel: M maps output pixels to source
// positions, taken to 1/32 pixel in 10-bit fixed point, then a 15-bit
// bilinear blend.
export function warpAffine(src, sw, sh, m, dw, dh) {
  const out = new Uint8Array(dw * dh);
  const aDelta = new Int32Array(dw), bDelta = new Int32Array(dw);
  for (let x = 0; x < dw; x++) { aDelta[x] = rint(m[0][0] * x * 1024); bDelta[x] = rint(m[1][0] * x * 1024); }
  for (let y = 0; y < dh; y++) {
    const x0 = rint((m[0][1] * y + m[0][2]) * 1024) + 16, y0 = rint((m[1][1] * y + m[1][2]) * 1024) + 16;
    for (let x = 0; x < dw; x++) {
      const X = (x0 + aDelta[x]) >> 5, Y = (y0 + bDelta[x]) >> 5;
      const sx = X >> 5, sy = Y >> 5, tx = X & 31, ty = Y & 31;
      const u0 = clip(sx, 0, sw - 1), u1 = clip(sx + 1, 0, sw - 1);
      const v0 = clip(sy, 0, sh - 1) * sw, v1 = clip(sy + 1, 0, sh - 1) * sw;
      const value = 32 * ((32 - tx) * (32 - ty) * src[v0 + u0] + tx * (32 - ty) * src[v0 + u1] +
                          (32 - tx) * ty * src[v1 + u0] + tx * ty * src[v1 + u1]);
      out[y * dw + x] = clip((value + 16384) >> 15, 0, 255);
    }
  }
  return out;
}
