// The `exp` op's wasm helper in ulps against float64 Math.exp: every 2^-12 step over softmax's range [-87, 0],
// a sweep over all float bit patterns whose e^x is finite and nonzero, and special values; the plain build here,
// the relaxed-SIMD build (fused multiply-adds) in a child node started with the flag Node 20 needs.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import type { NamedKernel } from "../../compiler/codegen/kernel.js";
import { ew, inp, op } from "./ew-util.js";

// exp_v runs the vector loop (and its scalar tail), exp_s the scalar form (the input broadcast along axis 1).
const KERNELS: NamedKernel[] = [
  { name: "exp_v", spec: ew(1, [["f32"]], "f32", op("exp", "f32", inp(0))) },
  { name: "exp_s", spec: ew(2, [["f32", [false, true]]], "f32", op("exp", "f32", inp(0))) },
];

// Runs both kernels over xs; must work as plain JS in the child too (it is passed as source text).
const RUN = `(binary, xs) => {
  const n = xs.length, bytes = n * 4, pages = Math.ceil((3 * bytes + 65536) / 65536);
  const mem = new WebAssembly.Memory({ initial: pages });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory: mem } });
  new Float32Array(mem.buffer, 64, n).set(xs);
  inst.exports.exp_v(64, 64 + bytes, n);
  inst.exports.exp_s(64, 64 + 2 * bytes, n, 1);
  return [new Float32Array(mem.buffer.slice(64 + bytes, 64 + 2 * bytes)), new Float32Array(mem.buffer.slice(64 + 2 * bytes, 64 + 3 * bytes))];
}`;

function inputs(): Float32Array {
  const xs: number[] = [];
  for (let i = -87 * 4096; i <= 0; i++) xs.push(i / 4096);
  // Every 1024th float bit pattern from -104 up and from +0 to 88.73 (beyond: 0 or +inf, checked exactly).
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  for (let b = 0x80000000; ; b += 1024) { bits[0] = b; if (f[0]! < -104) break; xs.push(f[0]!); }
  for (let b = 0; ; b += 1024) { bits[0] = b; if (f[0]! > 88.72) break; xs.push(f[0]!); }
  return Float32Array.from(xs);
}

/** |got - e^x| in units of the spacing of floats at e^x (2^-149 below the normal range). */
function ulps(got: number, x: number): number {
  const w = Math.exp(x);
  const e = Math.max(Math.floor(Math.log2(w)), -126);
  return Math.abs(got - w) / 2 ** (e - 23);
}

function check(label: string, xs: Float32Array, v: Float32Array, s: Float32Array): void {
  let worstSoftmax = 0;
  let worstAll = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!Object.is(v[i], s[i])) throw new Error(`${label}: vector ${v[i]} != scalar ${s[i]} at x = ${xs[i]}`);
    const u = ulps(v[i]!, xs[i]!);
    if (xs[i]! >= -87 && xs[i]! <= 0) worstSoftmax = Math.max(worstSoftmax, u);
    worstAll = Math.max(worstAll, u);
  }
  console.log(`exp ${label}: max ${worstSoftmax.toFixed(3)} ulp on [-87, 0], ${worstAll.toFixed(3)} ulp over the finite range`);
  expect(worstSoftmax).toBeLessThanOrEqual(2);
  expect(worstAll).toBeLessThanOrEqual(2);
}

const SPECIAL: [number, number][] = [[0, 1], [-0, 1], [Infinity, Infinity], [-Infinity, 0], [NaN, NaN], [88.8, Infinity],
  [89, Infinity], [1000, Infinity], [-104, 0], [-1000, 0], [3.4e38, Infinity], [-3.4e38, 0], [-103.9, 1.4e-45],
  // A causal attention row after its max: vectors whose lanes are 0 or masked (-inf, -1e9) take the fast path
  // whole (x < -104 gives 0 there), with the same bits as the general path.
  [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [-Infinity, 0], [-0, 1], [-1e9, 0], [-104.5, 0], [0, 1], [-3.4e38, 0], [-Infinity, 0]];

function checkSpecial(label: string, v: Float32Array, s: Float32Array): void {
  SPECIAL.forEach(([x, want], i) => {
    const w = Number.isNaN(want) ? NaN : Math.fround(want);
    for (const got of [v[i]!, s[i]!]) {
      if (!(Object.is(got, w) || (Number.isNaN(got) && Number.isNaN(w)))) throw new Error(`${label}: exp(${x}) = ${got}, want ${w}`);
    }
  });
}

describe("exp helper accuracy (ulp)", () => {
  const xs = inputs();
  const special = Float32Array.from(SPECIAL.map((p) => p[0]));

  it("plain SIMD128 build: <= 2 ulp, vector = scalar, special values", async () => {
    const { binary } = await buildWasmModule(KERNELS, { simd: "plain" });
    const run = new Function(`return ${RUN}`)() as (b: Uint8Array, x: Float32Array) => [Float32Array, Float32Array];
    const [v, s] = run(binary, xs);
    check("plain", xs, v, s);
    checkSpecial("plain", ...run(binary, special));
  });

  it("relaxed-SIMD build (fused multiply-adds): <= 2 ulp, vector = scalar, special values", async () => {
    const { binary } = await buildWasmModule(KERNELS, { simd: "relaxed" });
    const dir = mkdtempSync(join(tmpdir(), "kiln-exp-"));
    writeFileSync(join(dir, "m.wasm"), binary);
    writeFileSync(join(dir, "x.bin"), new Uint8Array(xs.buffer));
    writeFileSync(join(dir, "s.bin"), new Uint8Array(special.buffer));
    const script = `const fs = require("fs"); const run = ${RUN}; const b = fs.readFileSync(process.argv[1] + "/m.wasm");
      for (const k of ["x", "s"]) { const raw = fs.readFileSync(process.argv[1] + "/" + k + ".bin");
        const [v, s] = run(b, new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4));
        fs.writeFileSync(process.argv[1] + "/" + k + ".v", v); fs.writeFileSync(process.argv[1] + "/" + k + ".o", s); }`;
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", "-e", script, dir], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
    const read = (f: string) => { const b = readFileSync(join(dir, f)); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
    check("relaxed", xs, read("x.v"), read("x.o"));
    checkSpecial("relaxed", read("s.v"), read("s.o"));
  });
});
