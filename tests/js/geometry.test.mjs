// The page's pure functions (static/geometry.js) under Node's own test
// runner: `node --test tests/js/`. With PAGE_CASES naming a JSON file of
// Python's answers (tests/test_page_logic.py writes it), each function is
// also checked against ferkit's, on the same inputs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { anchors, follow, inkOn, insideNone, iou, movedWith, overlap, smoothStep, tiles, weightedNms } from "../../static/geometry.js";

const cases = process.env.PAGE_CASES ? JSON.parse(readFileSync(process.env.PAGE_CASES, "utf8")) : null;
const close = (a, b, tolerance = 1e-5) => Math.abs(a - b) <= tolerance;

test("box overlap: identical, disjoint, half, empty, and in both box formats", () => {
  assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
  assert.equal(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
  assert.ok(close(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150));
  assert.equal(iou([0, 0, 0, 0], [0, 0, 0, 0]), 0);
  assert.ok(close(overlap([0, 0, 10, 10], [5, 0, 10, 10]), 50 / 150));
});

test("anchors: one per cell for the full-range model, two for the short-range one, cell centres", () => {
  const full = anchors({ size: 192, strides: [4], twoPerCell: false });
  assert.equal(full.length, 48 * 48);
  assert.deepEqual(full[0], [Math.fround(0.5 / 48), Math.fround(0.5 / 48)]);
  assert.equal(anchors({ size: 128, strides: [8, 16, 16, 16], twoPerCell: true }).length, 16 * 16 * 2 + 8 * 8 * 6);
});

test("weighted NMS merges overlapping boxes by score and keeps the others", () => {
  const face = (box, score) => ({ box, score, points: [[box[0], box[1]]] });
  const faces = weightedNms([face([0, 0, 10, 10], 0.9), face([1, 0, 11, 10], 0.6), face([50, 50, 60, 60], 0.7)], 0.3);
  assert.equal(faces.length, 2);
  assert.ok(close(faces[0].box[0], (0.6 * 1) / 1.5) && faces[0].score === 0.9);
  faces[1].box.forEach((v, i) => assert.ok(close(v, [50, 50, 60, 60][i])));
  assert.equal(insideNone([face([0, 0, 100, 100], 0.8), face([10, 10, 30, 30], 0.9)]).length, 1);
});

test("tiles cover the picture with half-overlapping windows", () => {
  assert.deepEqual(tiles(400, 300, 480), [[0, 0]]);
  const windows = tiles(1280, 720, 480);
  const xs = [...new Set(windows.map(([x]) => x))];
  assert.equal(xs[0], 0);
  assert.equal(xs[xs.length - 1] + 480, 1280);
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i] - xs[i - 1] <= 240);
});

test("the followed face stays the same person; the largest when it is gone", () => {
  const a = { box: [0, 0, 10, 10] }, b = { box: [100, 100, 40, 40] };
  assert.equal(follow([a, b], null, 0.3), b);
  assert.equal(follow([a, b], [1, 0, 10, 10], 0.3), a);
  assert.equal(follow([a, b], [500, 500, 10, 10], 0.3), b);
  assert.equal(follow([], [0, 0, 10, 10], 0.3), null);
});

test("smoothing moves by 1 - exp(-dt / tau) and starts afresh for a new face or after a long gap", () => {
  const settings = { timeConstantMs: 300, forgetAfter: 10 };
  let average = smoothStep(null, { Happy: 1, Sad: 0 }, 0, true, settings);
  average = smoothStep(average, { Happy: 0, Sad: 1 }, 300, true, settings);
  assert.ok(close(average.probabilities.Sad, 1 - Math.exp(-1)));
  assert.equal(smoothStep(average, { Happy: 0, Sad: 1 }, 400, false, settings).probabilities.Sad, 1);
  assert.equal(smoothStep(average, { Happy: 0, Sad: 1 }, 300 + 3001, true, settings).probabilities.Sad, 1);
});

test("label ink: black on light colours, white on dark ones", () => {
  assert.equal(inkOn([255, 209, 102], 380), "#000");
  assert.equal(inkOn([69, 123, 157], 380), "#fff");
});

test("the same answers as ferkit's Python, on the same inputs", { skip: !cases && "PAGE_CASES not set" }, () => {
  const { constants } = cases;
  for (const [name, spec] of Object.entries({ full: constants.detector.full, closeUp: constants.detector.closeUp })) {
    const grid = anchors(spec);
    assert.equal(grid.length, cases.anchors[name].count, name);
    cases.anchors[name].some.forEach(([k, x, y]) => assert.ok(close(grid[k][0], x) && close(grid[k][1], y), `${name} ${k}`));
  }
  for (const { a, b, value } of cases.iou) assert.ok(close(iou(a, b), value), JSON.stringify({ a, b, value }));
  for (const { found, faces } of cases.nms) {
    const got = weightedNms(found, constants.detector.nmsIou);
    assert.equal(got.length, faces.length);
    got.forEach((f, i) => {
      f.box.forEach((v, j) => assert.ok(close(v, faces[i].box[j], 1e-4)));
      f.points.flat().forEach((v, j) => assert.ok(close(v, faces[i].points.flat()[j], 1e-4)));
    });
  }
  for (const { width, height, windows } of cases.tiles)
    assert.deepEqual(tiles(width, height, constants.detector.tileSide), windows);
  let average = null;
  for (const { probabilities, seconds, smoothed } of cases.smoothing) {
    average = smoothStep(average, probabilities, seconds * 1000, true, constants.smoothing);
    for (const [c, p] of Object.entries(smoothed)) assert.ok(close(average.probabilities[c], p, 1e-5), `${seconds} s ${c}`);
  }
  for (const [name, rgb] of Object.entries(constants.colours)) assert.equal(inkOn(rgb, constants.ink.darkAbove), cases.ink[name]);
  for (const { detection, first, now, moved } of cases.moved) {
    const got = movedWith(detection, first, now);
    assert.deepEqual(got.box, moved.box);
    got.points.flat().forEach((v, j) => assert.ok(close(v, moved.points.flat()[j], 1e-6)));
  }
});

test("a followed face moves and grows with its refit, in the full pass's own geometry", () => {
  const detection = { box: [100, 100, 50, 50], points: [[110, 120], [140, 120]] };
  const first = { box: [98, 110, 48, 48], points: [[111, 122], [139, 121]] };
  const now = { box: [108, 115, 96, 96], points: [[131, 132], [189, 131]] };
  const moved = movedWith(detection, first, now);
  // The refit's centre moved by (+34, +29) and its side doubled: the box's centre moves as much, its side doubles.
  assert.deepEqual(moved.box, [109, 104, 100, 100]);
  assert.deepEqual(moved.points, [[130, 130], [190, 130]]);
});
