// The tutorial's app: loads the model `kiln compile` wrote to src/model/ (WebGPU when the browser has it, else
// wasm, saying why), puts in the weights `kiln train --save` wrote to public/, and classifies the form's flower
// on every change. The state is mirrored in document.body.dataset.flowers for tests.
import { load } from "./model/flowers.js";
import { loadWeights } from "./model/kiln-runtime/index.js";

const SPECIES = ["setosa-like", "versicolor-like", "virginica-like"];
const $ = (id) => document.getElementById(id);

async function loadModel() {
  try {
    const m = await load({ backend: "webgpu" });
    return { m, backend: `WebGPU (${m.adapter})` };
  } catch (e) {
    // No navigator.gpu, no adapter, or a browser that blocks it: the same model runs on wasm.
    return { m: await load(), backend: "WebAssembly", fallback: e.message };
  }
}

async function classify(model) {
  const x = [...new FormData($("form")).values()].map(Number);
  const out = model.m.Flowers.predict({ x: [x] }, { batch: 1 });
  const probs = Array.from((out.read ? await out.read() : out).data);
  const best = probs.indexOf(Math.max(...probs));
  $("species").textContent = `${SPECIES[best]} (${(probs[best] * 100).toFixed(1)}%)`;
  $("probs").textContent = probs.map((p, k) => `${SPECIES[k]} ${(p * 100).toFixed(1)}%`).join(" · ");
  document.body.dataset.flowers = JSON.stringify({ backend: model.backend, fallback: model.fallback, x, probs, species: best });
}

async function main() {
  const model = await loadModel();
  const res = await fetch(`${import.meta.env.BASE_URL}flowers.safetensors`);
  if (!res.ok) throw new Error(`public/flowers.safetensors is missing (HTTP ${res.status}): train the model first (docs/tutorial.md)`);
  await loadWeights(model.m, new Uint8Array(await res.arrayBuffer()));
  $("backend").textContent = model.fallback ? `Running on ${model.backend} (WebGPU: ${model.fallback})` : `Running on ${model.backend}`;
  $("form").addEventListener("input", () => void classify(model));
  await classify(model);
}

main().catch((e) => {
  document.body.classList.add("failed");
  $("error").textContent = e.message;
  document.body.dataset.flowers = JSON.stringify({ error: e.message });
});
