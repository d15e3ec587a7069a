// `node bench/threads-chunks.js M,K,N [mm|dense|tn] [plain|relaxed] [threads] [reps]` (relaxed: run node with
// --experimental-wasm-relaxed-simd): how the thread pool cuts one f32 matmul call by rows and by columns
// (runtime/wasm/threads-split.ts), each chunk timed alone on one thread (fastest of `reps`), with the serial
// part (B packed once for row chunks, on all threads in column chunks where packChunks allows and
// KILN_THREADS_PACKSPLIT is not 0), the total work and the critical path on `threads` threads. No thread runs
// beside another, so the numbers hold on a loaded machine up to the fastest-of-reps; what the pool chooses is the
// "cols" line when it says columns. SRC, FN and DIMS (JSON) in the environment time another program's first
// split step instead (params left zero), e.g. a convolution. Run `npm run build` first (it loads dist/).
const root = new URL("..", import.meta.url).pathname;
const { compileToIR, buildWasm } = await import(root + "/dist/compiler/compile.js");
const { loadKernels } = await import(root + "/dist/runtime/wasm/threads-load.js");
const { readParallelInfo, COL_RANGE_GLOBALS, SHARED_B_GLOBAL } = await import(root + "/dist/runtime/wasm/threads-meta.js");
const { splitCall, packChunks } = await import(root + "/dist/runtime/wasm/threads-split.js");
const { prepackedBytes } = await import(root + "/dist/runtime/wasm/prepack.js");
const { evalDimPoly } = await import(root + "/dist/runtime/manifest.js");
const [M, K, N] = process.argv[2].split(",").map(Number);
const kind = process.argv[3] ?? "mm";
const simd = process.argv[4] ?? "plain";
const threads = Number(process.argv[5] ?? 2);
const REPS = Number(process.argv[6] ?? 200);
const src = kind === "dense" ? `fn f(x: f32[${M}, ${K}], w: f32[${K}, ${N}], bias: f32[${N}]) -> f32[${M}, ${N}] { return relu(x @ w + bias) }`
  : kind === "tn" ? `fn f(a: f32[${K}, ${M}], b: f32[${K}, ${N}]) -> f32[${M}, ${N}] { return transpose(a) @ b }`
  : `fn f(a: f32[${M}, ${K}], b: f32[${K}, ${N}]) -> f32[${M}, ${N}] { return a @ b }`;
const b = await buildWasm(compileToIR(process.env.SRC ?? src, "b.kiln").ir, "bench");
const k = await loadKernels(b.wasm, simd === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {});
const info = readParallelInfo(k.module);
const fn = b.manifest.functions.find((f) => f.name === (process.env.FN ?? f.name));
const step = fn.steps.find((s) => info.kernels[s.kernel]);
const dimsOf = JSON.parse(process.env.DIMS ?? "{}");
const ptrs = step.buffers.map((v) => k.memory.allocPersistent(4 * Math.max(1, fn.values[v].shape.reduce((x, y) => x * (typeof y === "number" ? y : dimsOf[y]), 1)) + 4 * 1024 * 1024, "x"));
// Params and prepacked weights are left as zeros: only the time matters here.
const args = [...ptrs, ...step.ints.map((p) => evalDimPoly(p, dimsOf))];
const kern = k.kernels.get(step.kernel);
const split = info.kernels[step.kernel];
const ex = k.instance.exports;
const [g0, g1] = COL_RANGE_GLOBALS.map((g) => ex[g]);
const time = (f) => { let best = Infinity; for (let r = 0; r < REPS; r++) { const t0 = performance.now(); f(); best = Math.min(best, performance.now() - t0); } return best; };
const one = time(() => kern(...args));
const lpt = (ts) => { const load = Array(threads).fill(0); for (const t of [...ts].sort((a, b) => b - a)) { const i = load.indexOf(Math.min(...load)); load[i] += t; } return Math.max(...load); };
const report = (label, serial, ts) => console.log(`${label}: ${ts.length} chunks, serial ${serial.toFixed(3)} ms, chunks ${ts.map((t) => t.toFixed(3)).join(" ")}; total ${(serial + ts.reduce((a, x) => a + x, 0)).toFixed(3)} ms (${((serial + ts.reduce((a, x) => a + x, 0)) / one).toFixed(2)}x one call), critical path ${(serial + lpt(ts)).toFixed(3)} ms -> ideal speed-up ${(one / (serial + lpt(ts))).toFixed(2)}x`);
console.log(`${kind} [${M},${K},${N}] ${simd}: one thread ${one.toFixed(3)} ms`);
const rows = splitCall(split, args, threads, 64, split.sharedB !== undefined, false);
if (rows) {
  let serial = 0;
  if (rows.sharedB) {
    const sb = split.sharedB; const bytes = prepackedBytes(args[sb.K], args[sb.N]);
    const p = k.memory.allocPersistent(bytes, "sb"); const packer = k.kernels.get(sb.packer);
    serial = time(() => packer(args[sb.b], p, args[sb.K], args[sb.N]));
    // Packed on all threads (packChunks, when the packer honours column ranges): each column chunk alone.
    const pc = sb.cols && process.env.KILN_THREADS_PACKSPLIT !== "0" ? packChunks(args[sb.K], args[sb.N], threads, 64, 8) : null;
    if (pc) {
      const ts = pc.map(([n0, n1]) => time(() => { g0.value = n0; g1.value = n1; packer(args[sb.b], p, args[sb.K], args[sb.N]); }));
      g0.value = 0; g1.value = 0x7fffffff;
      console.log(`B packing: ${serial.toFixed(3)} ms on one thread; in ${pc.length} column chunks ${ts.map((t) => t.toFixed(3)).join(" ")} -> ${lpt(ts).toFixed(3)} ms on ${threads} threads`);
      serial = lpt(ts);
    }
    ex[SHARED_B_GLOBAL].value = p;
  }
  report("rows", serial, rows.chunks.map((c) => time(() => kern(...c))));
  if (ex[SHARED_B_GLOBAL]) ex[SHARED_B_GLOBAL].value = 0;
} else console.log("rows: no split");
// What the pool does (its flags as threads-load.ts passes them); when it keeps rows, the column cut it weighed.
const chosen = splitCall(split, args, threads, 64, split.sharedB !== undefined, true);
const cols = chosen?.cols ? chosen : splitCall(split, args, threads, 64, false, true);
if (cols?.cols) {
  report(chosen?.cols ? "cols (the pool's choice)" : "cols (not chosen: the pool cuts rows)", 0, cols.chunks.map((c) => time(() => { g0.value = c.at(-2); g1.value = c.at(-1); kern(...c); })));
  g0.value = 0; g1.value = 0x7fffffff;
} else console.log("cols: not offered for this call");
process.exit(0);
