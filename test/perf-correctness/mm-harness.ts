// Test helpers for the packed matmul: builds matmul kernels (plain or relaxed SIMD), runs them on a fresh
// memory with a scratch buffer, and computes the float64 reference with an error bound per element.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { matmulScratchBytes, type SimdVariant } from "../../compiler/codegen/wasm/matmul-blocking.js";

export const mm = (batchRank: number, o: Partial<MatmulKernel> = {}): MatmulKernel => ({
  kind: "matmul", dtype: "f32", batchRank, aBcast: new Array<boolean>(batchRank).fill(false), bBcast: new Array<boolean>(batchRank).fill(false), ...o,
});

/** One matmul call: the logical problem, the stored operands and where the kernel should write. */
export interface MmCase {
  readonly spec: MatmulKernel;
  readonly bext: readonly number[];
  readonly M: number;
  readonly K: number;
  readonly N: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
  /** Row range (default the whole of [0, M)). */
  readonly rows?: readonly [number, number];
}

const prod = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

export function randomCase(spec: MatmulKernel, bext: number[], M: number, K: number, N: number, seed: number): MmCase {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const nA = prod(bext.map((e, q) => (spec.aBcast[q] ? 1 : e))) * M * K;
  const nB = prod(bext.map((e, q) => (spec.bBcast[q] ? 1 : e))) * K * N;
  return { spec, bext, M, K, N, a: Float32Array.from({ length: nA }, rnd), b: Float32Array.from({ length: nB }, rnd) };
}

/** Float64 product and, per element, sum |a*b| (the scale of rounding error). */
export function reference(c: MmCase): { want: Float64Array; mag: Float64Array } {
  const { spec, bext, M, K, N, a, b } = c;
  const nb = prod(bext);
  const want = new Float64Array(nb * M * N);
  const mag = new Float64Array(nb * M * N);
  for (let t = 0; t < nb; t++) {
    let rem = t, ao = 0, bo = 0, sa = 1, sb = 1;
    for (let q = bext.length - 1; q >= 0; q--) {
      const i = rem % bext[q]!;
      rem = Math.floor(rem / bext[q]!);
      if (!spec.aBcast[q]) { ao += i * sa; sa *= bext[q]!; }
      if (!spec.bBcast[q]) { bo += i * sb; sb *= bext[q]!; }
    }
    const A = (i: number, k: number) => a[ao * M * K + (spec.transA ? k * M + i : i * K + k)]!;
    const B = (k: number, j: number) => b[bo * K * N + (spec.transB ? j * K + k : k * N + j)]!;
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let sum = 0, m = 0;
      for (let k = 0; k < K; k++) { const p = A(i, k) * B(k, j); sum += p; m += Math.abs(p); }
      want[t * M * N + i * N + j] = sum;
      mag[t * M * N + i * N + j] = m;
    }
  }
  return { want, mag };
}

/** Throws on the first element outside |got - want| <= 2^-20 * sum|a*b| (f32 accumulation of K terms). */
export function check(c: MmCase, got: Float32Array, label: string): void {
  const { want, mag } = reference(c);
  const [r0, r1] = c.rows ?? [0, c.M];
  for (let idx = 0; idx < want.length; idx++) {
    const i = Math.floor(idx / c.N) % c.M;
    if (i < r0 || i >= r1) continue;
    const tol = 2 ** -20 * mag[idx]! + 1e-30;
    if (!(Math.abs(got[idx]! - want[idx]!) <= tol)) {
      throw new Error(`${label} M=${c.M} K=${c.K} N=${c.N} bext=[${c.bext}] at ${idx}: got ${got[idx]} want ${want[idx]}`);
    }
  }
}

const GUARD = 64;

/** Lays out a, b, a guarded output (0xAB bytes) and scratch in `buf`; returns the kernel args and output offset. */
function layout(c: MmCase): { bytes: number; args: number[]; out: number; nOut: number; fill: (u8: Uint8Array) => void } {
  const nOut = prod(c.bext) * c.M * c.N;
  // Deliberately only 4-byte aligned, like the codegen harness: the kernel must not assume 16.
  const pa = 1028, pb = pa + c.a.byteLength + 20, out = pb + c.b.byteLength + 20;
  const scratch = out + nOut * 4 + GUARD + 4;
  const bytes = scratch + matmulScratchBytes(c.M, c.K, c.N) + 64;
  const [r0, r1] = c.rows ?? [0, c.M];
  const args = [pa, pb, scratch, out, ...c.bext, c.M, c.K, c.N, r0, r1];
  const fill = (u8: Uint8Array) => {
    u8.set(new Uint8Array(c.a.buffer, c.a.byteOffset, c.a.byteLength), pa);
    u8.set(new Uint8Array(c.b.buffer, c.b.byteOffset, c.b.byteLength), pb);
    u8.fill(0xab, out, out + nOut * 4 + GUARD);
  };
  return { bytes, args, out, nOut, fill };
}

export interface MmRun {
  /** The output (rows outside the range keep the 0xAB pattern). */
  out: Float32Array;
  /** Whether the bytes after the output are still the guard pattern. */
  guardIntact: boolean;
}

/** Builds one module holding `specs` (kernel i is "mm{i}") and runs each case with kernel `which`. */
export async function runPlain(specs: MatmulKernel[], cases: { which: number; c: MmCase }[]): Promise<MmRun[]> {
  return runIn(await build(specs, "plain"), cases);
}

async function build(specs: MatmulKernel[], simd: SimdVariant): Promise<Uint8Array<ArrayBuffer>> {
  return (await buildWasmModule(specs.map((spec, i) => ({ name: `mm${i}`, spec })), { optimize: true, simd })).binary;
}

function runIn(binary: Uint8Array<ArrayBuffer>, cases: { which: number; c: MmCase }[]): MmRun[] {
  const mem = new WebAssembly.Memory({ initial: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory: mem } });
  return cases.map(({ which, c }) => {
    const L = layout(c);
    const need = Math.ceil(L.bytes / 65536) - mem.buffer.byteLength / 65536;
    if (need > 0) mem.grow(need);
    L.fill(new Uint8Array(mem.buffer));
    (inst.exports[`mm${which}`] as (...a: number[]) => void)(...L.args);
    const out = new Float32Array(mem.buffer.slice(L.out, L.out + L.nOut * 4));
    const guardIntact = new Uint8Array(mem.buffer, L.out + L.nOut * 4, GUARD).every((x) => x === 0xab);
    return { out, guardIntact };
  });
}

// Runs in a child `node --experimental-wasm-relaxed-simd`: the same steps as runPlain, on files.
const CHILD = `
const fs = require("node:fs");
const [dir] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(dir + "/job.json", "utf8"));
const mod = new WebAssembly.Module(fs.readFileSync(dir + "/k.wasm"));
const mem = new WebAssembly.Memory({ initial: 1 });
const inst = new WebAssembly.Instance(mod, { env: { memory: mem } });
job.forEach((j, n) => {
  const need = Math.ceil(j.bytes / 65536) - mem.buffer.byteLength / 65536;
  if (need > 0) mem.grow(need);
  const u8 = new Uint8Array(mem.buffer);
  u8.set(fs.readFileSync(dir + "/in" + n + ".bin"), 0);
  inst.exports["mm" + j.which](...j.args);
  fs.writeFileSync(dir + "/out" + n + ".bin", new Uint8Array(mem.buffer, j.out, j.nOut * 4 + ${GUARD}));
});
`;

/** Like runPlain with the relaxed-SIMD build; in a child process with the V8 flag when this one lacks it. */
export async function runRelaxed(specs: MatmulKernel[], cases: { which: number; c: MmCase }[]): Promise<MmRun[]> {
  const binary = await build(specs, "relaxed");
  if (WebAssembly.validate(binary)) return runIn(binary, cases);
  const dir = mkdtempSync(join(tmpdir(), "kiln-relaxed-"));
  try {
    writeFileSync(join(dir, "k.wasm"), binary);
    const job = cases.map(({ which, c }, n) => {
      const L = layout(c);
      const u8 = new Uint8Array(L.bytes);
      L.fill(u8);
      writeFileSync(join(dir, `in${n}.bin`), u8);
      return { which, bytes: L.bytes, args: L.args, out: L.out, nOut: L.nOut };
    });
    writeFileSync(join(dir, "job.json"), JSON.stringify(job));
    writeFileSync(join(dir, "child.cjs"), CHILD);
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", join(dir, "child.cjs"), dir], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`relaxed child failed: ${r.stderr}`);
    return job.map((j, n) => {
      const raw = readFileSync(join(dir, `out${n}.bin`));
      const u8 = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength).slice();
      return { out: new Float32Array(u8.buffer, 0, j.nOut), guardIntact: u8.subarray(j.nOut * 4).every((x) => x === 0xab) };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
