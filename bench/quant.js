// `node bench/quant.js [--sizes 512,1024] [--rounds N]`: int8 matmul against f32, Kiln beside onnxruntime-web, in
// one process on one thread (run `npm run build` first: it uses dist/). Rows: Kiln f32 `x @ w` and the same
// module after quantizeDynamic (end to end: inputs copied in, outputs out); the kernels alone on operands already
// in wasm memory (f32 matmul, dynamic qmatmul, u8 x i8 -> i32 like MatMulInteger); onnxruntime-web's f32 MatMul,
// MatMulInteger (B an int8 initializer) and DynamicQuantizeLinear + MatMulInteger + rescale. Medians over
// interleaved rounds; Kiln's u8 x i8 -> i32 kernel must equal MatMulInteger exactly.
import * as ort from "onnxruntime-web";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { buildWasmModule } from "../dist/compiler/codegen/wasm/module.js";
import { WASM_QPACKING, qmatmulScratchBytes } from "../dist/compiler/codegen/wasm/qmatmul-layout.js";
import { matmulScratchBytes } from "../dist/compiler/codegen/wasm/matmul-blocking.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { loadKernels } from "../dist/runtime/wasm/threads-load.js";
import { quantizeDynamic } from "../dist/runtime/quantize/dynamic.js";
import { dynamicQuantizeLinear, packWeight, qpWords, quantizeWeight } from "../dist/runtime/quantize/math.js";
import { randomF32, median } from "./common.js";
import { onnxModel } from "./onnx-model.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const sizes = opt("--sizes", "512,1024").split(",").map(Number);
const rounds = Number(opt("--rounds", 7));

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

async function kilnModule(n) {
  const src = `model L {\n  param w: f32[${n}, ${n}] = xavier()\n  fn forward(x: f32[${n}, ${n}]) -> f32[${n}, ${n}] { return x @ w }\n}\n`;
  const r = compileToIR(src, "bench.kiln");
  return buildWasm(r.ir, "bench");
}

/** The three kernels alone, operands in wasm memory. */
async function kernels(n, a, wq, aq) {
  const specs = [
    { name: "mm", spec: { kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [] } },
    { name: "qdyn", spec: { kind: "qmatmul", input: "dynamic", output: "f32", bias: false, relu: false } },
    { name: "qint", spec: { kind: "qmatmul", input: "q8", output: "i32", bias: false, relu: false } },
  ];
  const k = await loadKernels((await buildWasmModule(specs, { optimize: true })).binary, {});
  const put = (data) => {
    const p = k.memory.allocPersistent(data.byteLength, "bench");
    k.memory.write(p, data);
    return p;
  };
  const pa = put(a), pb = put(randomF32(n * n, n + 1)), pq = put(aq.q);
  const pw = put(packWeight(wq, WASM_QPACKING)), pqp = put(qpWords(wq, { scale: aq.scale, zeroPoint: aq.zeroPoint }));
  const ps = put(new Uint8Array(Math.max(qmatmulScratchBytes(n), matmulScratchBytes(n, n, n))));
  const po = put(new Float32Array(n * n));
  const f = (name) => k.kernels.get(name);
  return {
    f32: () => f("mm")(pa, pb, ps, po, n, n, n, 0, n),
    dyn: () => f("qdyn")(pa, pw, pqp, ps, po, n, n, n, 0, n),
    int: () => f("qint")(pq, pw, pqp, ps, po, n, n, n, 0, n),
    readI32: () => new Int32Array(k.memory.read("i32", po, n * n)),
  };
}

async function ortSessions(n, wf, wq, aq) {
  const s = (spec) => ort.InferenceSession.create(onnxModel(spec), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const wInt8 = { name: "W", type: "int8", shape: [n, n], data: wq.q };
  const f32 = await s({ inputs: [["A", "float32", [n, n]]], outputs: [["Y", "float32", [n, n]]], initializers: [{ name: "W", type: "float32", shape: [n, n], data: wf }], nodes: [{ op: "MatMul", inputs: ["A", "W"], outputs: ["Y"] }] });
  const int = await s({
    inputs: [["A", "uint8", [n, n]], ["az", "uint8", []]], outputs: [["Y", "int32", [n, n]]], initializers: [wInt8],
    nodes: [{ op: "MatMulInteger", inputs: ["A", "W", "az"], outputs: ["Y"] }],
  });
  const dyn = await s({
    inputs: [["A", "float32", [n, n]]], outputs: [["Y", "float32", [n, n]]], initializers: [wInt8, { name: "ws", type: "float32", shape: [n], data: wq.scales }],
    nodes: [
      { op: "DynamicQuantizeLinear", inputs: ["A"], outputs: ["Aq", "as", "az"] },
      { op: "MatMulInteger", inputs: ["Aq", "W", "az"], outputs: ["Y32"] },
      { op: "Cast", inputs: ["Y32"], outputs: ["Yf"], attrs: { to: 1 } },
      { op: "Mul", inputs: ["as", "ws"], outputs: ["s"] },
      { op: "Mul", inputs: ["Yf", "s"], outputs: ["Y"] },
    ],
  });
  return { f32, int, dyn };
}

async function timeAll(cases) {
  const ms = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(cases)) {
      const t = performance.now();
      await run();
      ms[name].push(performance.now() - t);
    }
  }
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)]));
}

console.log(`int8 vs f32 matmul, n x n x n, 1 thread, median of ${rounds} interleaved rounds (Node ${process.versions.node})`);
for (const n of sizes) {
  const x = randomF32(n * n, n);
  const wf = randomF32(n * n, n + 1).map((v) => v * Math.sqrt(3 / n));
  const wq = quantizeWeight("w", wf, n, n, false);
  const aq = dynamicQuantizeLinear(x);
  const b = await kilnModule(n);
  const mf = await loadKilnModule(b.manifest, b.wasm, { params: { "L.w": wf } });
  const mq = await loadKilnModule(b.manifest, b.wasm, { params: { "L.w": wf } });
  quantizeDynamic(mq);
  const k = await kernels(n, x, wq, aq);
  const o = await ortSessions(n, wf, wq, aq);
  const ortA = new ort.Tensor("float32", x, [n, n]);
  const ortQ = new ort.Tensor("uint8", aq.q, [n, n]), ortZ = new ort.Tensor("uint8", Uint8Array.of(aq.zeroPoint), []);
  // Cross-check: the u8 x i8 -> i32 kernel against MatMulInteger, exactly.
  k.int();
  const ortInt = (await o.int.run({ A: ortQ, az: ortZ })).Y.data;
  const kInt = k.readI32();
  const mismatches = kInt.reduce((c, v, i) => c + (v !== ortInt[i] ? 1 : 0), 0);
  const t = await timeAll({
    "kiln f32": () => mf.L.forward({ x }),
    "kiln int8 (quantizeDynamic)": () => mq.L.forward({ x }),
    "kiln kernel f32": () => k.f32(),
    "kiln kernel int8 dynamic": () => k.dyn(),
    "kiln kernel u8xi8->i32": () => k.int(),
    "ort f32 MatMul": () => o.f32.run({ A: ortA }),
    "ort MatMulInteger": () => o.int.run({ A: ortQ, az: ortZ }),
    "ort dynamic int8": () => o.dyn.run({ A: ortA }),
  });
  const gop = (ms) => (2 * n ** 3) / ms / 1e6;
  console.log(`\nn=${n}  (Kiln u8xi8->i32 vs ORT MatMulInteger: ${mismatches === 0 ? "identical" : `${mismatches} mismatches`})`);
  for (const [name, ms] of Object.entries(t)) console.log(`  ${name.padEnd(30)} ${ms.toFixed(2).padStart(8)} ms  ${gop(ms).toFixed(1).padStart(6)} GOP/s`);
  const r = (a, c) => (t[c] / t[a]).toFixed(2);
  console.log(`  ratios: kiln int8/f32 end-to-end ${r("kiln int8 (quantizeDynamic)", "kiln f32")}x, kernels ${r("kiln kernel int8 dynamic", "kiln kernel f32")}x (u8xi8->i32 ${r("kiln kernel u8xi8->i32", "kiln kernel f32")}x); ` +
    `ort int8/f32 ${r("ort MatMulInteger", "ort f32 MatMul")}x (dynamic ${r("ort dynamic int8", "ort f32 MatMul")}x); kiln int8 speed / ort int8 speed: MatMulInteger ${r("kiln kernel u8xi8->i32", "ort MatMulInteger")}x, dynamic ${r("kiln int8 (quantizeDynamic)", "ort dynamic int8")}x`);
  mf.dispose();
  mq.dispose();
  await Promise.all(Object.values(o).map((s) => s.release()));
}
process.exit(0);
