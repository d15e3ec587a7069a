// `node bench/shared-copy.js shared|plain`: 1 MiB of f32 copied into and out of a wasm memory, shared (what a
// threaded module has) or not, one kind per process: through each view type (u8, f32, f64, BigInt64), in 16 KiB
// chunks, into a reused destination (the copy alone) and into a fresh one (what runtime/wasm/memory.ts read does:
// slice). Prints the median ms per copy over 7 batches of 100 (range). Issue 19: are copies out of shared memory
// the cost of layer_norm on 2 threads? See docs/performance.md.
const shared = process.argv[2] === "shared";
const N = 256 * 1024, BYTES = N * 4, ptr = 65536;
const m = new WebAssembly.Memory({ initial: 64, maximum: 1024, ...(shared ? { shared: true } : {}) });
const src = new Float32Array(N).map((_, i) => Math.sin(i));
const dst = new Float32Array(N);
const views = { u8: [Uint8Array, 1], f32: [Float32Array, 4], f64: [Float64Array, 8], i64: [BigInt64Array, 8] };
const cases = {};
for (const [name, [T, b]] of Object.entries(views)) {
  cases[`write ${name}`] = () => new T(m.buffer, ptr, BYTES / b).set(new T(src.buffer, 0, BYTES / b));
  cases[`read-into ${name}`] = () => new T(dst.buffer, 0, BYTES / b).set(new T(m.buffer, ptr, BYTES / b));
  cases[`read-slice ${name}`] = () => new T(m.buffer, ptr, BYTES / b).slice();
}
cases["write u8 chunks 16k"] = () => { const d = new Uint8Array(m.buffer, ptr, BYTES), s = new Uint8Array(src.buffer); for (let o = 0; o < BYTES; o += 16384) d.set(s.subarray(o, o + 16384), o); };
cases["read-into u8 chunks 16k"] = () => { const s = new Uint8Array(m.buffer, ptr, BYTES), d = new Uint8Array(dst.buffer); for (let o = 0; o < BYTES; o += 16384) d.set(s.subarray(o, o + 16384), o); };
cases["read-fresh new+set f32"] = () => { const o = new Float32Array(N); o.set(new Float32Array(m.buffer, ptr, N)); return o; };
cases["read buffer.slice"] = () => new Float32Array(m.buffer.slice(ptr, ptr + BYTES));
const time = (f, reps) => { const t0 = process.hrtime.bigint(); for (let i = 0; i < reps; i++) f(); return Number(process.hrtime.bigint() - t0) / 1e6 / reps; };
const res = {};
for (const f of Object.values(cases)) for (let i = 0; i < 30; i++) f();
for (let r = 0; r < 7; r++) for (const [k, f] of Object.entries(cases)) (res[k] ??= []).push(time(f, 100));
for (const [k, v] of Object.entries(res)) { v.sort((a, b) => a - b); console.log(`${shared ? "shared" : "plain "} ${k.padEnd(26)} median ${v[3].toFixed(4)} ms (${v[0].toFixed(4)}-${v[6].toFixed(4)})`); }
