// Browser demo: loads the compiled MLP on WebGPU (falling back to wasm), runs MLP.predict on the 28x28 pad and
// draws the class probabilities. The result is also left in document.body.dataset.kiln for the end-to-end test.
import { load } from "../../build/mlp/mlp.js";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });

async function loadModel(forceWasm) {
  if (!forceWasm) {
    try {
      const m = await load({ backend: "webgpu", seed: 1 });
      return { m, backend: `WebGPU on ${m.adapter}` };
    } catch (e) {
      // KilnError "load_failed": no navigator.gpu or no adapter. Anything else is worth showing too.
      $("status").textContent = `WebGPU unavailable (${e.message}); using wasm`;
    }
  }
  return { m: await load({ seed: 1 }), backend: "wasm" };
}

function pixels() {
  const rgba = ctx.getImageData(0, 0, 28, 28).data;
  return Float32Array.from({ length: 784 }, (_, i) => rgba[4 * i + 3] / 255);
}

function randomInput() {
  ctx.clearRect(0, 0, 28, 28);
  for (let i = 0; i < 784; i++) {
    ctx.fillStyle = `rgba(0, 0, 0, ${Math.random().toFixed(2)})`;
    ctx.fillRect(i % 28, Math.floor(i / 28), 1, 1);
  }
}

async function predict(model) {
  const t0 = performance.now();
  const out = model.m.MLP.predict({ x: pixels() }, { batch: 1 });
  // WebGPU calls return GpuTensors (read back on demand); wasm calls return Tensors.
  const probs = Array.from((out.read ? await out.read() : out).data);
  const ms = performance.now() - t0;
  $("probs").innerHTML = probs
    .map((p, k) => `<div class="bar"><span>${k}</span><span>${p.toFixed(3)}</span><span style="width:${Math.round(p * 200)}px"></span></div>`)
    .join("");
  $("status").textContent = `${model.backend}: predict in ${ms.toFixed(1)} ms (including readback)`;
  document.body.dataset.kiln = JSON.stringify({ backend: model.backend, probs });
}

async function main() {
  const forceWasm = new URLSearchParams(location.search).get("backend") === "wasm";
  const model = await loadModel(forceWasm);
  let drawing = false;
  const draw = (e) => {
    if (!drawing) return;
    const r = pad.getBoundingClientRect();
    ctx.fillStyle = "black";
    ctx.fillRect(Math.floor(((e.clientX - r.left) / r.width) * 28) - 1, Math.floor(((e.clientY - r.top) / r.height) * 28) - 1, 2, 2);
  };
  pad.addEventListener("pointerdown", (e) => { drawing = true; draw(e); });
  pad.addEventListener("pointermove", draw);
  addEventListener("pointerup", () => { if (drawing) { drawing = false; void predict(model); } });
  $("random").onclick = () => { randomInput(); void predict(model); };
  $("clear").onclick = () => { ctx.clearRect(0, 0, 28, 28); void predict(model); };
  // A fixed first input, so the page (and its test) is deterministic: a diagonal stroke.
  for (let i = 4; i < 24; i++) ctx.fillRect(i, i, 2, 2);
  await predict(model);
}

main().catch((e) => {
  $("status").textContent = `error: ${e.message}`;
  $("status").className = "error";
  document.body.dataset.kiln = JSON.stringify({ error: e.message });
});
