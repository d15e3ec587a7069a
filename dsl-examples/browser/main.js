// Browser demo: loads the compiled MLP (WebGPU, else wasm, saying why), puts the weights trained by `kiln train`
// into it, turns the drawing into an MNIST-like 28x28 input and shows MLP.predict's answer. The state is mirrored
// in document.body.dataset (ready, kiln) for the end-to-end test.
const MODEL = "../../build/mlp/mlp.js";
const RUNTIME = "../../build/mlp/kiln-runtime/index.js";
const WEIGHTS = "./mlp.safetensors";
const COMPILE = "npx kiln compile dsl-examples/mlp.kiln --target all --out build/mlp";
const TRAIN = "npx kiln train dsl-examples/mlp_train.kiln --train Adam --data mnist --augment --epochs 8 --batch 64 --seed 1 --save dsl-examples/browser/mlp.safetensors";
// The pixel statistics the network was trained with (compiler/cli/data.ts normalises MNIST this way).
const MEAN = 0.1307, STD = 0.3081;

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });

class DemoError extends Error {
  constructor(html) {
    super(html.replace(/<[^>]+>/g, ""));
    this.html = html;
  }
}

async function importModel() {
  try {
    return { mod: await import(MODEL), runtime: await import(RUNTIME) };
  } catch (e) {
    throw new DemoError(`The compiled model is missing (<code>build/mlp/mlp.js</code> did not load: ${escape(e.message)}). ` +
      `Compile it from the repository root, then reload: <code class="cmd">${COMPILE}</code>`);
  }
}

async function fetchWeights() {
  const res = await fetch(WEIGHTS).catch((e) => ({ ok: false, statusText: e.message }));
  if (!res.ok) throw new DemoError(`The trained weights are missing (<code>dsl-examples/browser/mlp.safetensors</code>: ${escape(String(res.status ?? res.statusText))}). Train them from the repository root: <code class="cmd">${TRAIN}</code>`);
  return new Uint8Array(await res.arrayBuffer());
}

/** WebGPU when it works, else wasm; the reason for a fallback is kept and shown, not overwritten. */
async function loadModel(load, forceWasm) {
  let fallback = forceWasm ? "?backend=wasm asked for it" : undefined;
  if (!forceWasm) {
    try {
      const m = await load({ backend: "webgpu" });
      return { m, backend: `WebGPU (${m.adapter})` };
    } catch (e) {
      fallback = e.message;
    }
  }
  return { m: await load(), backend: "WebAssembly", fallback };
}

/**
 * The drawing as MNIST's preprocessing would have it: the ink's bounding box scaled (by area averaging) into a
 * 20x20 box, placed so its centre of mass is at the centre of 28x28, then normalised. A raw downscale of a
 * drawing gives thin, off-centre digits the network never saw, and answers that look like noise.
 */
function toInput() {
  const { width: W, height: H } = pad;
  const rgba = ctx.getImageData(0, 0, W, H).data;
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (rgba[4 * (y * W + x) + 3] > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (x1 < 0) return undefined;
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const sx = x0 - (side - (x1 - x0 + 1)) / 2, sy = y0 - (side - (y1 - y0 + 1)) / 2;
  const box = new Float32Array(20 * 20);
  const cell = side / 20;
  for (let ty = 0; ty < 20; ty++) {
    for (let tx = 0; tx < 20; tx++) {
      let sum = 0, n = 0;
      for (let y = Math.floor(sy + ty * cell); y < Math.ceil(sy + (ty + 1) * cell); y++) {
        for (let x = Math.floor(sx + tx * cell); x < Math.ceil(sx + (tx + 1) * cell); x++) {
          n++;
          if (x >= 0 && y >= 0 && x < W && y < H) sum += rgba[4 * (y * W + x) + 3] / 255;
        }
      }
      box[ty * 20 + tx] = n ? sum / n : 0;
    }
  }
  let mass = 0, cx = 0, cy = 0;
  box.forEach((v, i) => { mass += v; cx += v * ((i % 20) + 0.5); cy += v * (Math.floor(i / 20) + 0.5); });
  const dx = Math.round(14 - cx / mass), dy = Math.round(14 - cy / mass);
  const x = new Float32Array(784).fill(-MEAN / STD);
  for (let i = 0; i < 400; i++) {
    const r = Math.floor(i / 20) + dy, c = (i % 20) + dx;
    if (r >= 0 && r < 28 && c >= 0 && c < 28) x[r * 28 + c] = (box[i] - MEAN) / STD;
  }
  return x;
}

let predictions = 0;

async function predict(model) {
  const x = toInput();
  if (!x) {
    $("answer").innerHTML = "";
    $("probs").innerHTML = "";
    $("status").textContent = "draw a digit";
    return;
  }
  const t0 = performance.now();
  const out = model.m.MLP.predict({ x }, { batch: 1 });
  // WebGPU calls return GpuTensors (read back on demand); wasm calls return Tensors.
  const probs = Array.from((out.read ? await out.read() : out).data);
  const ms = performance.now() - t0;
  const digit = probs.indexOf(Math.max(...probs));
  $("answer").innerHTML = `${digit} <small>${(probs[digit] * 100).toFixed(1)}% sure</small>`;
  $("probs").innerHTML = probs
    .map((p, k) => `<div class="bar${k === digit ? " top" : ""}"><span>${k}</span><span>${(p * 100).toFixed(1)}%</span><i style="width:${Math.max(1, Math.round(p * 192))}px"></i></div>`)
    .join("");
  $("status").textContent = `predict in ${ms.toFixed(1)} ms`;
  document.body.dataset.kiln = JSON.stringify({ backend: model.backend, fallback: model.fallback, digit, probs, input: Array.from(x), n: ++predictions });
}

function showBackend(model) {
  const el = $("backend");
  el.textContent = model.fallback ? `Running on ${model.backend}; WebGPU is not used: ${model.fallback}` : `Running on ${model.backend}`;
  el.className = model.fallback ? "fallback" : "";
}

function wireDrawing(model) {
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = 22;
  ctx.strokeStyle = "#000";
  let last;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * pad.width, ((e.clientY - r.top) / r.height) * pad.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    last = at(e);
    pad.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = at(e);
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = undefined;
    void predict(model);
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").onclick = () => {
    ctx.clearRect(0, 0, pad.width, pad.height);
    void predict(model);
  };
}

function escape(s) {
  return s.replace(/[<>&]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" })[c]);
}

async function main() {
  const forceWasm = new URLSearchParams(location.search).get("backend") === "wasm";
  const { mod, runtime } = await importModel();
  const weights = await fetchWeights();
  const model = await loadModel(mod.load, forceWasm);
  await runtime.loadWeights(model.m, weights);
  showBackend(model);
  wireDrawing(model);
  $("status").textContent = "draw a digit";
  document.body.dataset.ready = JSON.stringify({ backend: model.backend, fallback: model.fallback });
}

main().catch((e) => {
  document.body.classList.add("failed");
  $("error").innerHTML = e instanceof DemoError ? e.html : `The demo failed: ${escape(e.message)}`;
  document.body.dataset.kiln = JSON.stringify({ error: e.message });
});
