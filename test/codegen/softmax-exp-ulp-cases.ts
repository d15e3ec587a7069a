// Shared by softmax-exp-ulp.test.ts (plain build) and softmax-exp-ulp.relaxed.test.ts: the exp inside the softmax
// row kernel (math.ts expRow for rows within [-87.6, 0] of their max, expFast's test and general path for the
// others) in ulps against float64 Math.exp, read from the exps the kernel stores for a backward (saves, out: false)
// on rows whose max is 0, so each stored exp is e^x of the input itself. Dense: every float in [-2, -1) and in
// [-64, -32), every float in [-87.6, -87.3] (e^x near and below the smallest normal), a million random x in
// [-87.6, 0], and rows reaching below -87.6 (the general path: subnormals, 0 below -103.97, -inf).
import { expect } from "vitest";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";

/** |got - e^x| in units of the spacing of floats at e^x (2^-149 below the normal range), as wasm-exp.test.ts. */
function ulps(got: number, x: number): number {
  const w = Math.exp(x);
  const e = Math.max(Math.floor(Math.log2(w)), -126);
  return Math.abs(got - w) / 2 ** (e - 23);
}

/** Every float from `from` toward -inf down to `to` (both negative, |from| < |to|). */
function floatsBetween(from: number, to: number, out: number[]): void {
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  f[0] = from;
  for (let b = bits[0]!; ; b++) {
    bits[0] = b;
    if (f[0]! < to) break;
    out.push(f[0]!);
  }
}

const C = 1024;

/** Rows of C - 1 values after a leading 0 (each row's max), padded with 0. */
function asRows(xs: number[]): Float32Array {
  const rows = Math.ceil(xs.length / (C - 1));
  const a = new Float32Array(rows * C);
  xs.forEach((x, i) => { a[Math.floor(i / (C - 1)) * C + 1 + (i % (C - 1))] = x; });
  return a;
}

async function storedExps(build: "plain" | "relaxed", a: Float32Array): Promise<Float32Array> {
  const { binary } = await buildWasmModule([{ name: "rows", spec: { kind: "softmax_rows", mode: "softmax", saves: { out: false } } }], { simd: build, optimize: true, text: false });
  const rows = a.length / C;
  const bytes = a.length * 4;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((2 * bytes + rows * 4 + 65536) / 65536) });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory } });
  new Float32Array(memory.buffer, 0, a.length).set(a);
  (inst.exports.rows as (...a: number[]) => void)(0, bytes, 2 * bytes, rows, C);
  return new Float32Array(memory.buffer.slice(bytes, 2 * bytes));
}

/** Worst ulp of the stored exps over xs (laid out by asRows), with the x where it occurs. */
async function worst(build: "plain" | "relaxed", xs: number[]): Promise<{ ulp: number; at: number }> {
  const a = asRows(xs);
  const e = await storedExps(build, a);
  let w = { ulp: 0, at: 0 };
  for (let i = 0; i < a.length; i++) {
    const u = a[i] === -Infinity ? (e[i] === 0 ? 0 : Infinity) : ulps(e[i]!, a[i]!);
    if (!(u <= w.ulp)) w = { ulp: u, at: a[i]! };
  }
  return w;
}

export async function checkExpUlp(build: "plain" | "relaxed"): Promise<void> {
  // Rows within [-87.6, 0] of their max: expRow, no test.
  const fast: number[] = [];
  floatsBetween(-1, -2, fast);
  floatsBetween(-32, -64, fast);
  floatsBetween(-87.3, -87.6, fast);
  let s = 12345;
  for (let i = 0; i < 1e6; i++) fast.push(Math.fround(-87.6 * ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)));
  // Rows reaching below: every 64th float in [-110, -87.6) and special values, mixed with in-range ones.
  const slow: number[] = [];
  const deep: number[] = [];
  floatsBetween(-87.6, -110, deep);
  for (let i = 0; i < deep.length; i += 64) slow.push(deep[i]!, -Infinity, -3e38, -5 * (i % 17));
  const f = await worst(build, fast);
  const g = await worst(build, slow);
  console.log(`softmax row exp, ${build}: max ${f.ulp.toFixed(3)} ulp over ${fast.length} x in [-87.6, 0] (at ${f.at}); ${g.ulp.toFixed(3)} ulp on rows reaching below (at ${g.at})`);
  expect(f.ulp).toBeLessThanOrEqual(2);
  expect(g.ulp).toBeLessThanOrEqual(2);
}
