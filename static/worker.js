// The page's models off its main thread: local.js's analyser in a Web
// Worker, so drawing the boxes, the bars and the chart never waits for a
// model. app.js posts {kind: "create", classes, constants, modelUrl} once,
// then {kind: "analyse", bitmap, options} for each camera frame (a
// transferred ImageBitmap) or photo (a copy); each answer carries the
// message's id. Nothing here sends a picture anywhere: the only requests
// are the models' files.

import { createLocalAnalyser } from "/static/local.js";

let analyser = null;
// One request at a time, in the order they came: a session runs one call at
// once, and a camera's frames must be read in order (faces are followed
// from one to the next).
let queue = Promise.resolve();
self.onmessage = ({ data }) => { queue = queue.then(() => handle(data)); };

async function handle(data) {
  const { id, kind } = data;
  try {
    if (kind === "create") {
      analyser = await createLocalAnalyser(data.classes, data.constants, data.modelUrl);
      self.postMessage({ id, result: { detector: analyser.detector, backend: analyser.backend, threads: analyser.threads } });
    } else if (kind === "analyse") {
      const { bitmap, options } = data;
      try {
        self.postMessage({ id, result: await analyser.analyse(bitmap, bitmap.width, bitmap.height, options) });
      } finally {
        bitmap.close();
      }
    } else {
      throw new Error(`unknown request ${kind}`);
    }
  } catch (e) {
    self.postMessage({ id, error: (e && e.message) || String(e) });
  }
}
