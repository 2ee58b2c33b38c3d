// The page. Where the browser can (WebAssembly or WebGPU, and a server with
// an .onnx model and onnxruntime-web), camera frames and dropped photos are
// analysed in the browser by local.js and never leave it; otherwise they go
// to /api/emotions. At most one frame is in flight, so no queue can grow.
// A module: strict, and nothing it defines is global.

import { follow, inkOn, overlap, smoothStep } from "/static/geometry.js";

const $ = (id) => document.getElementById(id);
const HISTORY_MS = 30000;
const FRAME_SIDE = 640; // Frames are sent at most this wide: a camera face is large.
const PHOTO_SIDE = 2048; // Photos sent to the server are scaled to this first (a phone photo can pass 10 MiB).
const MAX_PIXELS = 50000000; // serve.py's limit, for photos read in the browser too.
const FRAME_TIMEOUT_MS = 5000;
let classes = [];
let colours = {};
let constants = null; // The numbers shared with Python: /api/health's constants (ferkit/vision/page_constants.py).
const history = []; // {t, probabilities} of the followed face (null: no face), last 30 s.
const session = []; // Every analysed frame since the camera started: {time, faces}, for the downloads.
let sessionStart = 0;
let followed = null; // The box of the face the bars and the chart follow, frame to frame.
let local = null; // The in-browser analyser, once it is loaded.
// Settles once the page knows where pictures are analysed: in browser mode
// the camera and dropped photos wait for the models, so no picture goes to
// the server while they load.
let modeChosen;
const whereChosen = new Promise((resolve) => { modeChosen = resolve; });

function colour(name) {
  const c = colours[name] || [255, 255, 255];
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

// Black or white text, whichever reads on the emotion's colour (drawing.annotate's rule).
function ink(name) {
  return inkOn(colours[name] || [255, 255, 255], constants.ink.darkAbove);
}

// An element with text: what came from the server goes in as text, never as HTML.
function element(tag, text = "", attributes = {}) {
  const e = document.createElement(tag);
  e.textContent = text;
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  return e;
}

// One queue for the in-browser models: camera frames and dropped photos take
// turns (WebGPU refuses overlapping runs of a session).
let modelQueue = Promise.resolve();
function exclusive(task) {
  const run = modelQueue.then(task, task);
  modelQueue = run.catch(() => {});
  return run;
}

async function health() {
  try {
    const answer = await (await fetch("/api/health")).json();
    classes = answer.classes;
    colours = answer.colours;
    constants = answer.constants;
    $("model").textContent = `${answer.model} on ${answer.runtime} (${answer.precision}): ${classes.join(", ")}`;
    showLegend();
    showBars(null);
    await chooseMode(answer.in_browser);
  } catch (e) {
    $("model").textContent = "the server does not answer";
  } finally {
    modeChosen();
  }
}

function showLegend() {
  $("legend").replaceChildren(...classes.map((c) => {
    const item = element("li");
    const swatch = element("i");
    swatch.style.background = colour(c);
    item.append(swatch, c);
    return item;
  }));
}

// The released models, to choose from in the browser: the server's own first.
async function offerModels() {
  const models = await (await fetch("/api/models")).json().catch(() => ({}));
  const names = Object.keys(models);
  if (names.length < 2) return;
  const serverClasses = classes;
  $("model-choice").replaceChildren(element("option", `the server's (${serverClasses.length} classes)`, { value: "" }),
    ...names.map((n) => element("option", `${n} (${models[n].classes.length} classes)`, { value: n })));
  $("model-choice-label").hidden = false;
  $("model-choice").addEventListener("change", async (e) => {
    const chosen = models[e.target.value];
    const wanted = chosen ? chosen.classes : serverClasses;
    let next;
    try {
      // Made in its turn: never beside a camera frame or a photo on the models.
      next = await exclusive(() => createWorkerAnalyser(wanted, chosen ? chosen.url : "/api/model.onnx"));
    } catch (err) {
      $("mode").textContent = `The model ${e.target.value || "of the server"} could not be loaded in this browser (${err.message}); the one before it still runs.`;
      return;
    }
    classes = wanted; // The bars, the chart and the downloads follow the model's classes.
    history.length = 0;
    const before = local;
    local = next;
    exclusive(() => before.close()); // After what it is reading now.
    showLegend();
    showBars(null);
  });
}

// The in-browser analyser in a Web Worker (worker.js): the same calls as
// local.js's createLocalAnalyser gives, each a message. A camera frame goes
// as an ImageBitmap, transferred; a photo's bitmap as a copy (the page still
// draws it). close() ends the worker once the frames already sent are read.
async function createWorkerAnalyser(wanted, modelUrl = "/api/model.onnx") {
  const worker = new Worker("/static/worker.js", { type: "module" });
  const waiting = new Map();
  let next = 0;
  const failAll = (message) => { for (const w of waiting.values()) w.reject(new Error(message)); waiting.clear(); };
  worker.onmessage = ({ data }) => {
    const w = waiting.get(data.id);
    waiting.delete(data.id);
    if (w) data.error ? w.reject(new Error(data.error)) : w.resolve(data.result);
  };
  worker.onerror = (e) => { e.preventDefault(); failAll(e.message || "the page's worker stopped"); };
  const call = (message, transfer = []) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ ...message, id }, transfer);
  });
  let info;
  try {
    info = await call({ kind: "create", classes: wanted, constants, modelUrl });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return {
    ...info,
    async analyse(source, width, height, options = {}) {
      const bitmap = await createImageBitmap(source, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      return call({ kind: "analyse", bitmap, options }, [bitmap]);
    },
    close() { worker.terminate(); failAll("the model was changed"); },
  };
}

function runsOn(analyser) {
  return analyser.backend === "WebGPU" ? "WebGPU" : `WebAssembly, ${analyser.threads} thread(s)`;
}

async function chooseMode(possible) {
  const wanted = new URLSearchParams(location.search).get("mode"); // ?mode=server forces the server.
  if (possible && wanted !== "server" && typeof WebAssembly === "object") {
    try {
      $("mode").textContent = "Loading the models into this browser…";
      local = await createWorkerAnalyser(classes);
      $("mode").textContent = `Camera frames and photos are analysed in this browser (${runsOn(local)}, off the page's `
        + "main thread); no picture leaves it.";
      offerModels();
      return;
    } catch (e) {
      local = null;
      $("mode").textContent = `In-browser mode failed (${e.message}); camera frames go to the server.`;
      return;
    }
  }
  $("mode").textContent = "Camera frames and photos go to the server on this machine, which analyses them and answers.";
}

async function analyse(blob, photo = false) {
  const started = performance.now();
  // A frame that takes too long is given up, so a stalled server cannot freeze the page.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), photo ? 4 * FRAME_TIMEOUT_MS : FRAME_TIMEOUT_MS);
  let response, text;
  try {
    // A dropped photo is searched closely (small faces); a camera frame gets one fast pass.
    response = await fetch(photo ? "/api/emotions?photo=1" : "/api/emotions",
      { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" }, signal: abort.signal });
    text = await response.text();
  } catch (e) {
    throw new Error(e.name === "AbortError" ? "no answer within the time allowed" : "the server does not answer");
  } finally {
    clearTimeout(timer);
  }
  let answer = null;
  try { answer = JSON.parse(text); } catch (e) { /* A proxy's or a crash's HTML page: reported below. */ }
  if (!response.ok) throw new Error((answer && answer.error) || `HTTP ${response.status}`);
  if (!answer) throw new Error("the server's answer was not JSON");
  answer.latency = performance.now() - started;
  return answer;
}

function drawFaces(ctx, faces, scale, mirroredWidth = 0) {
  ctx.lineWidth = Math.max(2, 3 * scale);
  ctx.font = `${Math.max(14, Math.round(20 * scale))}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const face of faces) {
    let [x, y, w, h] = face.box.map((v) => v * scale);
    if (mirroredWidth) x = mirroredWidth - x - w; // The box where the mirrored picture shows the face.
    const label = `${face.emotion} ${face.probabilities[face.emotion].toFixed(2)}`;
    ctx.strokeStyle = ctx.fillStyle = colour(face.emotion);
    ctx.strokeRect(x, y, w, h);
    const width = ctx.measureText(label).width + 8;
    // Above the box, or inside its top edge when the box touches the top of the picture.
    const height = parseInt(ctx.font) + 6;
    const top = y - height >= 0 ? y - height : y;
    ctx.fillRect(x - ctx.lineWidth / 2, top, width, height);
    ctx.fillStyle = ink(face.emotion);
    ctx.fillText(label, x + 4, top + height - 3);
  }
}

// The face to follow: the one that overlaps the followed face's last box
// most, so the chart stays on one person; the largest when that face is gone.
function followFace(faces) {
  const best = follow(faces, followed, constants.tracking.minIou);
  followed = best ? best.box : null;
  return best;
}

// Steady bars: the followed face's probabilities averaged in time, as
// smoothing.py averages a video's (the same time constant), so a still face
// does not flicker between two emotions; the downloads keep each frame's own.
let average = null; // {at, probabilities} of the followed face.

function smoothed(face, now, sameFace) {
  average = smoothStep(average, face.probabilities, now, sameFace, constants.smoothing);
  const mean = average.probabilities;
  const emotion = Object.keys(mean).reduce((a, b) => (mean[a] >= mean[b] ? a : b));
  return { ...face, probabilities: mean, emotion };
}

function showBars(face, noFace = false) {
  $("no-face").hidden = !noFace;
  $("bars").replaceChildren(...classes.map((c) => {
    const p = face ? face.probabilities[c] ?? 0 : 0; // A frame of the model before a switch lacks a class.
    const fill = element("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.background = colour(c);
    const bar = element("span", "", { class: "bar" });
    bar.append(fill);
    const item = element("li");
    item.append(element("span", c), bar, element("span", p.toFixed(2)));
    return item;
  }));
}

function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const now = performance.now();
  while (history.length && now - history[0].t > HISTORY_MS) history.shift();
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#e3e6eb";
  for (let k = 1; k < 4; k++) {
    ctx.beginPath(); ctx.moveTo(0, (k * canvas.height) / 4); ctx.lineTo(canvas.width, (k * canvas.height) / 4); ctx.stroke();
  }
  ctx.lineWidth = 2;
  for (const c of classes) {
    ctx.strokeStyle = colour(c);
    ctx.beginPath();
    let drawing = false; // A frame without a face is a gap in the lines, not a fall to zero.
    for (const h of history) {
      if (!h.probabilities) { drawing = false; continue; }
      const x = canvas.width * (1 - (now - h.t) / HISTORY_MS);
      const y = canvas.height * (1 - h.probabilities[c]);
      drawing ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      drawing = true;
    }
    ctx.stroke();
  }
}

// Live camera ---------------------------------------------------------------
let stream = null;
const frames = []; // Completion times of the last frames, for frames/s.

function cameraMessage(text) {
  $("camera-message").hidden = !text;
  $("camera-message").textContent = text || "";
}

async function startCamera() {
  if (stream) return stopCamera();
  // One start at a time: a second click while the camera opens would start a second stream and loop.
  $("camera").disabled = true;
  try {
    await openCamera();
  } finally {
    $("camera").disabled = false;
  }
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return cameraMessage("This browser gives no camera to this page (it needs http://127.0.0.1 or https).");
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    const why = e.name === "NotAllowedError" ? "The camera was refused; allow it in the browser's site settings to see live emotions."
      : e.name === "NotFoundError" ? "No camera was found. You can still drop photos below."
      : `The camera could not start (${e.name}).`;
    return cameraMessage(why);
  }
  cameraMessage("");
  session.length = 0;
  sessionStart = performance.now();
  for (const id of ["snapshot", "save-json", "save-csv"]) $(id).disabled = false;
  $("video").srcObject = stream;
  $("camera").textContent = "Stop the camera";
  try {
    await $("video").play();
  } catch (e) {
    stopCamera();
    return cameraMessage(`The camera picture could not be shown (${e.name}); click "Start the camera" again.`);
  }
  loop();
}

function stopCamera() {
  stream.getTracks().forEach((t) => t.stop());
  stream = null;
  followed = null;
  $("camera").textContent = "Start the camera";
  $("rate").textContent = "";
  const overlay = $("overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height); // No boxes left over the stopped picture.
  showBars(null);
}

async function loop() {
  const video = $("video");
  const grab = document.createElement("canvas");
  if (!local) {
    cameraMessage("Loading the models into this browser; faces are read once they are loaded, and no frame is sent meanwhile.");
    await whereChosen;
    cameraMessage("");
  }
  while (stream) {
    // Nothing is sent while the tab is hidden or the video has no picture yet.
    if (!video.videoWidth || document.hidden) { await new Promise((r) => setTimeout(r, 100)); continue; }
    const scale = Math.min(1, FRAME_SIDE / video.videoWidth);
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    let answer, drawScale = 1;
    const analyser = local; // A model switch during the frame: the frame is dropped, the loop goes on.
    try {
      if (analyser) {
        // Boxes come back in the video's own pixels; the overlay is the grab's size.
        answer = await exclusive(() => analyser.analyse(video, video.videoWidth, video.videoHeight, { video: true }));
        drawScale = scale;
      } else {
        grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
        const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
        answer = await analyse(blob); // The next frame waits for this answer.
      }
    } catch (e) {
      cameraMessage(analyser ? `This browser could not analyse a frame: ${e.message}. Retrying every second.`
        : `The server did not analyse a frame: ${e.message}. Retrying every second.`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!stream) break; // Stopped while the frame was away.
    if (analyser !== local) continue; // Read by the model before a switch: its classes are not the bars'.
    cameraMessage(""); // The server answers again: the banner goes.
    const overlay = $("overlay");
    overlay.width = grab.width;
    overlay.height = grab.height;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    drawFaces(ctx, answer.faces, drawScale, $("mirror").checked ? overlay.width : 0);
    session.push({ time: Math.round(performance.now() - sessionStart) / 1000, faces: answer.faces });
    if (session.length > 100000) session.shift(); // About 40 minutes at 40 frames/s: the download keeps the latest.
    const wasFollowed = followed;
    const now = performance.now();
    const raw = followFace(answer.faces);
    const face = raw && smoothed(raw, now, wasFollowed !== null && overlap(raw.box, wasFollowed) >= constants.tracking.minIou);
    showBars(face, !face);
    // Every other face in view, in one line each.
    $("others").textContent = answer.faces.filter((f) => f !== raw)
      .map((f) => `Face ${f.face + 1}: ${f.emotion} ${f.probabilities[f.emotion].toFixed(2)}`).join(" · ");
    history.push({ t: now, probabilities: face ? face.probabilities : null });
    drawChart();
    frames.push(now);
    while (frames.length && now - frames[0] > 3000) frames.shift();
    const fps = frames.length > 1 ? (1000 * (frames.length - 1)) / (now - frames[0]) : 0;
    $("rate").textContent = local ? `${fps.toFixed(1)} frames/s, ${Math.round(answer.milliseconds)} ms a frame (in this browser)`
      : `${fps.toFixed(1)} frames/s, ${Math.round(answer.latency)} ms a frame (server ${answer.milliseconds} ms)`;
  }
}

// Downloads -----------------------------------------------------------------
function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function sessionCsv() {
  const rows = [["time", "face", "x", "y", "w", "h", "emotion", ...classes].join(",")];
  for (const frame of session) {
    if (!frame.faces.length) rows.push([frame.time, "", "", "", "", "", "", ...classes.map(() => "")].join(","));
    for (const f of frame.faces) rows.push([frame.time, f.face, ...f.box, f.emotion, ...classes.map((c) => f.probabilities[c].toFixed(5))].join(","));
  }
  return rows.join("\n") + "\n";
}

// The picture as shown (mirrored or not) with its boxes, as a PNG.
function snapshot() {
  const video = $("video"), overlay = $("overlay");
  const canvas = document.createElement("canvas");
  canvas.width = overlay.width;
  canvas.height = overlay.height;
  const ctx = canvas.getContext("2d");
  if ($("mirror").checked) { ctx.translate(canvas.width, 0); ctx.scale(-1, 1); }
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(overlay, 0, 0);
  canvas.toBlob((blob) => download("emotions-snapshot.png", blob), "image/png");
}

$("snapshot").addEventListener("click", snapshot);
$("save-json").addEventListener("click", () => download("emotions-session.json", new Blob([JSON.stringify(session, null, 1)], { type: "application/json" })));
$("save-csv").addEventListener("click", () => download("emotions-session.csv", new Blob([sessionCsv()], { type: "text/csv" })));
$("mirror").addEventListener("change", () => $("stage").classList.toggle("mirrored", $("mirror").checked));
$("stage").classList.toggle("mirrored", $("mirror").checked);

// Photos -------------------------------------------------------------------
// A photo scaled down in the browser so that its longer side is at most
// PHOTO_SIDE (EXIF orientation applied), as a JPEG; small photos go as they are.
// A dropped photo, decoded once for the analysis and the drawing: its own
// pixels, no colour conversion (as OpenCV reads them), upright by its EXIF.
function decoded(file) {
  return createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                   premultiplyAlpha: "none" }).catch(() => null);
}

// What goes to the server: the file, or a JPEG of the decoded photo shrunk to PHOTO_SIDE.
async function shrunk(file, image) {
  if (!image || Math.max(image.width, image.height) <= PHOTO_SIDE) return file;
  const scale = PHOTO_SIDE / Math.max(image.width, image.height);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(image.width * scale);
  canvas.height = Math.round(image.height * scale);
  canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.9));
  return blob || file;
}

// A photo read and analysed in this browser, searched as closely as emotions.py searches one.
async function analyseHere(image) {
  if (!image) throw new Error("not an image this browser can read");
  if (image.width * image.height > MAX_PIXELS)
    throw new Error(`${image.width} x ${image.height} pixels is more than the ${MAX_PIXELS.toLocaleString("en")} allowed`);
  const analyser = local;
  return await exclusive(() => analyser.analyse(image, image.width, image.height, { thorough: true }));
}

async function showPhoto(file) {
  const box = document.createElement("div");
  box.className = "result";
  box.innerHTML = `<div><canvas></canvas></div><div><h3></h3><p class="muted">analysing…</p></div>`;
  box.querySelector("h3").textContent = file.name;
  $("results").prepend(box);
  const note = box.querySelector("p");
  let answer, image;
  try {
    await whereChosen; // A photo dropped while the models load waits for them.
    image = await decoded(file);
    answer = local ? await analyseHere(image) : await analyse(await shrunk(file, image), true);
  } catch (e) {
    note.textContent = `Not analysed: ${e.message}`;
    if (image) image.close();
    return;
  }
  const canvas = box.querySelector("canvas");
  canvas.width = answer.width;
  canvas.height = answer.height;
  const ctx = canvas.getContext("2d");
  if (image) {
    ctx.drawImage(image, 0, 0, answer.width, answer.height);
    image.close();
  }
  drawFaces(ctx, answer.faces, Math.max(1, answer.width / 800));
  if (!answer.faces.length) {
    note.textContent = `No face found (${answer.milliseconds} ms).`;
    return;
  }
  const row = (cells, tag) => { const tr = element("tr"); tr.append(...cells.map((c) => element(tag, c))); return tr; };
  const head = element("thead"), body = element("tbody"), table = element("table");
  head.append(row(["face", "emotion", ...classes], "th"));
  body.append(...answer.faces.map((f) => row([String(f.face), f.emotion,
    ...classes.map((c) => (f.probabilities[c] ?? 0).toFixed(2))], "td")));
  table.append(head, body);
  const summary = element("p", `${answer.faces.length} face(s), ${answer.milliseconds} ms `, { class: "muted" });
  summary.append(element("button", "Save PNG", { type: "button", class: "save-photo" }), " ",
                 element("button", "Faces (JSON)", { type: "button", class: "save-faces" }));
  note.replaceWith(table, summary);
  const stem = file.name.replace(/\.[^.]*$/, "");
  box.querySelector(".save-photo").addEventListener("click", () =>
    canvas.toBlob((blob) => download(`${stem}.emotions.png`, blob), "image/png"));
  box.querySelector(".save-faces").addEventListener("click", () =>
    download(`${stem}.emotions.json`, new Blob([JSON.stringify(answer.faces, null, 1)], { type: "application/json" })));
}

function addFiles(files) {
  for (const file of files) showPhoto(file);
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } });
$("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
$("camera").addEventListener("click", startCamera);
health();
