// all_finite on the wasm backend (kernel.ts "finite", "flag outputs"): the `finite` kernel and the flag of
// elementwise, reduce and matmul kernels on each code path, against plain-JS references; flagged outputs are
// compared bit for bit with the same kernel unflagged; the relaxed-SIMD matmul runs in a child node with the flag.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ElementwiseKernel, EwExpr, FiniteKernel, KernelSpec, MatmulKernel, NamedKernel, ReduceKernel } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { MICRO, matmulScratchBytes, type SimdVariant } from "../../compiler/codegen/wasm/matmul-blocking.js";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32 } from "../../runtime/dtype.js";
import { rng, type AnyArray } from "./wasm-harness.js";
import { cast, cst, inp, numel, op } from "./ew-util.js";

// Thresholds from the formats: the largest finite f16 is (2 - 2^-10) * 2^15 = 65504 and the next step would be 2^16,
// so round-to-nearest-even sends [65520, inf) (the halfway point up: 2^16 is the even neighbour) to Inf; the largest
// finite bf16 is (2 - 2^-7) * 2^127 and the halfway point to 2^128 is (2 - 2^-8) * 2^127 (exact in f32).
const F16_INF_FROM = ((2 - 2 ** -10) * 2 ** 15 + 2 ** 16) / 2;
const BF16_INF_FROM = ((2 - 2 ** -7) * 2 ** 127 + 2 ** 128) / 2;

type FloatOut = "f32" | "f16" | "bf16";
const BAD = [Infinity, -Infinity, NaN];

/** Whether the f32 value `v` stores as a finite value of `d`. */
function storesFinite(d: FloatOut, v: number): boolean {
  const f = Math.abs(Math.fround(v));
  return d === "f32" ? Number.isFinite(f) : f < (d === "f16" ? F16_INF_FROM : BF16_INF_FROM);
}

/** Whether every element stored (raw bytes of `d`) is finite, judged from its bits. */
function bitsFinite(d: FloatOut, bytes: Uint8Array): boolean {
  const copy = bytes.slice();
  if (d === "f32") return new Uint32Array(copy.buffer).every((b) => (b & 0x7fffffff) < 0x7f800000);
  const inf = d === "f16" ? 0x7c00 : 0x7f80;
  return new Uint16Array(copy.buffer).every((h) => (h & 0x7fff) < inf);
}

const nextDownF32 = (x: number): number => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([x]).buffer)[0]! - 1]).buffer)[0]!;

const encode = (d: DType, v: readonly number[]): AnyArray => {
  switch (d) {
    case "f32": return Float32Array.from(v);
    case "f16": return Uint16Array.from(v, f32ToF16Bits);
    case "bf16": return Uint16Array.from(v, f32ToBf16Bits);
    case "u8": return Uint8Array.from(v);
    case "i32": return Int32Array.from(v);
    default: throw new Error(d);
  }
};
/** The value a kernel reads back from `encode(d, [v])`. */
const seen = (d: DType, v: number): number =>
  d === "f16" ? f16BitsToF32(f32ToF16Bits(v)) : d === "bf16" ? bf16BitsToF32(f32ToBf16Bits(v)) : d === "f32" ? Math.fround(v) : v;

// ---- jobs: memory images, kernel calls and the bytes read back; run here or in a child node (relaxed SIMD) ----

const GUARD = 16;

/** One job's memory, laid out by a bump allocator: 4- but not 16-byte aligned by default, like wasm-harness. */
class Image {
  private top = 1024;
  private readonly parts: { at: number; bytes: Uint8Array }[] = [];

  alloc(bytes: number, misalign = 4): number {
    const p = Math.ceil(this.top / 16) * 16 + misalign;
    this.top = p + bytes + GUARD;
    return p;
  }

  put(a: AnyArray | Uint32Array, misalign = 4): number {
    const p = this.alloc(a.byteLength, misalign);
    this.parts.push({ at: p, bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice() });
    return p;
  }

  /** An output of `bytes` bytes plus a guard, all 0xAB (unwritten elements and overruns show). */
  out(bytes: number): number {
    const p = this.alloc(bytes + GUARD);
    this.parts.push({ at: p, bytes: new Uint8Array(bytes + GUARD).fill(0xab) });
    return p;
  }

  /** A bool flag holding `v` between two 0xAB guard bytes; read it back with `flagRead`. */
  flag(v: number): number {
    return this.put(Uint8Array.from([0xab, v, 0xab])) + 1;
  }

  bytes(): Uint8Array {
    const u8 = new Uint8Array(this.top + 64);
    for (const p of this.parts) u8.set(p.bytes, p.at);
    return u8;
  }
}

const flagRead = (flag: number): [number, number] => [flag - 1, 3];

interface Job {
  readonly image: Uint8Array;
  readonly calls: readonly { readonly fn: string; readonly args: readonly number[] }[];
  readonly reads: readonly (readonly [number, number])[];
}

function runHere(binary: Uint8Array<ArrayBuffer>, jobs: readonly Job[]): Uint8Array[][] {
  const mem = new WebAssembly.Memory({ initial: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory: mem } });
  return jobs.map((j) => {
    const need = Math.ceil(j.image.length / 65536) - mem.buffer.byteLength / 65536;
    if (need > 0) mem.grow(need);
    new Uint8Array(mem.buffer).set(j.image);
    for (const c of j.calls) (inst.exports[c.fn] as (...a: number[]) => void)(...c.args);
    return j.reads.map(([p, n]) => new Uint8Array(mem.buffer, p, n).slice());
  });
}

// The child: the same steps as runHere, on files (an engine without relaxed SIMD needs the V8 flag).
const CHILD = `
const fs = require("node:fs");
const dir = process.argv[2];
const jobs = JSON.parse(fs.readFileSync(dir + "/jobs.json", "utf8"));
const mem = new WebAssembly.Memory({ initial: 1 });
const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(dir + "/k.wasm")), { env: { memory: mem } });
jobs.forEach((j, n) => {
  const image = fs.readFileSync(dir + "/in" + n + ".bin");
  const need = Math.ceil(image.length / 65536) - mem.buffer.byteLength / 65536;
  if (need > 0) mem.grow(need);
  new Uint8Array(mem.buffer).set(image);
  for (const c of j.calls) inst.exports[c.fn](...c.args);
  fs.writeFileSync(dir + "/out" + n + ".bin", Buffer.concat(j.reads.map(([p, len]) => new Uint8Array(mem.buffer, p, len))));
});
`;

function runInChild(binary: Uint8Array<ArrayBuffer>, jobs: readonly Job[]): Uint8Array[][] {
  const dir = mkdtempSync(join(tmpdir(), "kiln-finite-"));
  try {
    writeFileSync(join(dir, "k.wasm"), binary);
    jobs.forEach((j, n) => writeFileSync(join(dir, `in${n}.bin`), j.image));
    writeFileSync(join(dir, "jobs.json"), JSON.stringify(jobs.map((j) => ({ calls: j.calls, reads: j.reads }))));
    writeFileSync(join(dir, "child.cjs"), CHILD);
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", join(dir, "child.cjs"), dir], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`relaxed child failed: ${r.stderr}`);
    return jobs.map((j, n) => {
      const raw = new Uint8Array(readFileSync(join(dir, `out${n}.bin`)));
      let at = 0;
      return j.reads.map(([, len]) => raw.slice(at, (at += len)));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds each spec as `name` (with the flag) and `name_nf` (without), then runs the jobs in that build. */
async function runJobs(specs: Record<string, KernelSpec>, jobs: readonly Job[], simd: SimdVariant = "plain"): Promise<Uint8Array[][]> {
  const named: NamedKernel[] = Object.entries(specs).flatMap(([name, spec]) => [
    { name, spec },
    ...(spec.kind === "finite" ? [] : [{ name: `${name}_nf`, spec: { ...spec, flag: undefined } as KernelSpec }]),
  ]);
  const { binary } = await buildWasmModule(named, { optimize: true, simd });
  if (simd === "plain" || WebAssembly.validate(binary)) return runHere(binary, jobs);
  return runInChild(binary, jobs);
}

/** A flagged run's results: the flag byte, its guards, and whether the outputs match the unflagged run's bytes. */
interface Outcome {
  readonly label: string;
  readonly want: number;
  readonly got: Uint8Array;
  /** [flagged, unflagged] byte images of each output (guards included). */
  readonly outs: readonly (readonly [Uint8Array, Uint8Array])[];
  /** The dtype and length in bytes of the checked output (first of outs), for the stored-bits cross-check. */
  readonly checked?: { readonly d: FloatOut; readonly bytes: number; readonly preset: number };
}

/** Checks outcomes together and reports the first few failures by label. */
function expectOutcomes(list: readonly Outcome[]): void {
  const bad: string[] = [];
  for (const o of list) {
    const why: string[] = [];
    if (o.got[0] !== 0xab || o.got[2] !== 0xab) why.push(`flag guards ${o.got[0]}, ${o.got[2]}`);
    if (o.got[1] !== o.want) why.push(`flag ${o.got[1]}, want ${o.want}`);
    o.outs.forEach(([f, u], i) => { if (!f.every((b, k) => b === u[k])) why.push(`output ${i} differs from the unflagged kernel's`); });
    // As stored: the flag is false exactly when an element written to out is not finite.
    if (o.checked && o.checked.preset === 1) {
      const fin = bitsFinite(o.checked.d, o.outs[0]![0].subarray(0, o.checked.bytes));
      if ((fin ? 1 : 0) !== o.want) why.push(`reference says ${o.want}, stored bits say ${fin ? 1 : 0}`);
    }
    if (why.length > 0) bad.push(`${o.label}: ${why.join("; ")}`);
  }
  expect(bad.slice(0, 8), `${bad.length} of ${list.length} wrong`).toEqual([]);
}

// ---- the finite kernel ----

describe("finite kernel (in, flag, n)", () => {
  const DTYPES = ["f32", "f16", "bf16"] as const;
  const SIZES = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257];
  // Inf, -Inf, quiet NaN, the smallest-payload (signalling) NaN and all-ones (negative NaN).
  const BAD_BITS = { f32: [0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff], f16: [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff], bf16: [0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffff] };
  const EXP = { f32: [23, 0xff], f16: [10, 0x1f], bf16: [7, 0xff] } as const;
  const specs = Object.fromEntries(DTYPES.map((d) => [`fin_${d}`, { kind: "finite", dtype: d } satisfies FiniteKernel]));

  /** Random finite bit patterns (any sign, subnormals, zeros), with the largest finite magnitudes mixed in. */
  function finiteBits(d: (typeof DTYPES)[number], n: number, r: () => number): number[] {
    const [shift, allOnes] = EXP[d];
    const width = d === "f32" ? 32 : 16;
    const maxFinite = ((allOnes - 1) * 2 ** shift) + 2 ** shift - 1;
    return Array.from({ length: n }, () => {
      if (r() < 0.05) return maxFinite + (r() < 0.5 ? 2 ** (width - 1) : 0);
      const b = Math.floor(r() * 2 ** width);
      return Math.floor(b / 2 ** shift) % (allOnes + 1) === allOnes ? b - 2 ** shift : b;
    });
  }

  function job(d: (typeof DTYPES)[number], bits: number[], misalign: number, preset: number): { job: Job; flag: number } {
    const img = new Image();
    const bytes = d === "f32" ? 4 : 2;
    // Non-finite values right before and after the range: the kernel must read exactly [0, n).
    const pad = new Array<number>(16 / bytes).fill(BAD_BITS[d][0]!);
    const all = [...pad, ...bits, ...pad];
    const p = img.put(d === "f32" ? Uint32Array.from(all) : Uint16Array.from(all), misalign) + 16;
    const flag = img.flag(preset);
    return { job: { image: img.bytes(), calls: [{ fn: `fin_${d}`, args: [p, flag, bits.length] }], reads: [flagRead(flag)] }, flag };
  }

  it("clears the flag for Inf/NaN at the first, a middle and the last element; keeps it on finite data", async () => {
    const jobs: Job[] = [];
    const outcomes: { label: string; want: number }[] = [];
    const r = rng(7);
    for (const d of DTYPES) {
      // f32 at 4 and 12 bytes past a 16-byte boundary; 16-bit data also at 2 and 6 (not 4-aligned).
      for (const misalign of d === "f32" ? [4, 12] : [2, 6]) {
        for (const n of SIZES) {
          const clean = finiteBits(d, n, r);
          const add = (bits: number[], preset: number, want: number, label: string) => {
            jobs.push(job(d, bits, misalign, preset).job);
            outcomes.push({ label: `${d} +${misalign} n=${n} ${label}`, want });
          };
          add(clean, 1, 1, "finite");
          add(clean, 0, 0, "finite, flag already false");
          const at = [...new Set([0, n >> 1, n - 1])].filter((i) => i >= 0);
          for (const i of at) {
            BAD_BITS[d].forEach((b) => {
              const bits = clean.slice();
              bits[i] = b;
              add(bits, 1, 0, `0x${b.toString(16)} at ${i}`);
            });
          }
        }
      }
    }
    const res = await runJobs(specs, jobs);
    expectOutcomes(outcomes.map((o, n) => ({ ...o, got: res[n]![0]!, outs: [] })));
  });
});

// ---- elementwise kernels ----

interface EwCase {
  readonly k: ElementwiseKernel;
  /** The f32 value the kernel computes before storing `out`, from the input values it read. */
  readonly ref: (v: readonly number[]) => number;
  readonly exts: readonly (readonly number[])[];
}

const f32In = (rank: number, bcast?: boolean[]) => ({ dtype: "f32" as DType, bcast: bcast ?? new Array<boolean>(rank).fill(false) });
const add = (d: DType, a: EwExpr, b: EwExpr) => op("add", d, a, b);
const EXTS2 = [[1, 1], [3, 5], [2, 8], [3, 13], [4, 33]];

const EW: Record<string, EwCase> = {
  // Vector loop + scalar tail, b broadcast along rows (streamed) or along the inner axis (hoisted and splatted).
  add_f32: { k: { kind: "elementwise", rank: 2, inputs: [f32In(2), f32In(2, [true, false])], out: "f32", expr: add("f32", inp(0), inp(1)) }, ref: ([a, b]) => a! + b!, exts: EXTS2 },
  add_rowb: { k: { kind: "elementwise", rank: 2, inputs: [f32In(2), f32In(2, [false, true])], out: "f32", expr: add("f32", inp(0), inp(1)) }, ref: ([a, b]) => a! + b!, exts: EXTS2 },
  // A u8 input keeps the kernel scalar.
  mul_u8: {
    k: { kind: "elementwise", rank: 2, inputs: [f32In(2), { dtype: "u8", bcast: [false, false] }], out: "f32", expr: op("mul", "f32", inp(0), cast(inp(1), "f32")) },
    ref: ([a, c]) => a! * c!, exts: EXTS2,
  },
  // Extra outputs sit between out and the flag; only out is checked (its f16 copy of a * 1e5 overflows freely).
  xout: {
    k: {
      kind: "elementwise", rank: 2, inputs: [f32In(2), f32In(2, [true, false])], out: "f32", expr: add("f32", inp(0), inp(1)),
      extraOutputs: [{ dtype: "f16", expr: cast(op("mul", "f32", inp(0), cst(1e5, "f32")), "f16") }, { dtype: "f32", expr: op("neg", "f32", inp(1)) }],
    },
    ref: ([a, b]) => a! + b!, exts: EXTS2,
  },
  // f16 / bf16 outputs narrowed by half.ts (the root cast left to the rounding store), and f16 arithmetic.
  h16: { k: { kind: "elementwise", rank: 2, inputs: [f32In(2), f32In(2, [true, false])], out: "f16", expr: cast(add("f32", inp(0), inp(1)), "f16") }, ref: ([a, b]) => a! + b!, exts: EXTS2 },
  b16: { k: { kind: "elementwise", rank: 2, inputs: [f32In(2), f32In(2, [true, false])], out: "bf16", expr: cast(add("f32", inp(0), inp(1)), "bf16") }, ref: ([a, b]) => a! + b!, exts: EXTS2 },
  h16_ops: {
    k: { kind: "elementwise", rank: 2, inputs: [{ dtype: "f16", bcast: [false, false] }, { dtype: "f16", bcast: [true, false] }], out: "f16", expr: add("f16", inp(0), inp(1)) },
    ref: ([a, b]) => a! + b!, exts: EXTS2,
  },
  rank0: { k: { kind: "elementwise", rank: 0, inputs: [f32In(0), f32In(0)], out: "f32", expr: add("f32", inp(0), inp(1)) }, ref: ([a, b]) => a! + b!, exts: [[]] },
  rank3: {
    k: { kind: "elementwise", rank: 3, inputs: [f32In(3), f32In(3, [false, true, false])], out: "f32", expr: op("mul", "f32", inp(0), inp(1)) },
    ref: ([a, b]) => a! * b!, exts: [[2, 3, 5], [2, 1, 8], [3, 2, 4]],
  },
};

/** Offset of output element `o` in an input of broadcast flags `bcast`. */
function bcastOffset(ext: readonly number[], bcast: readonly boolean[], o: number): number {
  let rem = o;
  let off = 0;
  let stride = 1;
  for (let a = ext.length - 1; a >= 0; a--) {
    const i = rem % ext[a]!;
    rem = Math.floor(rem / ext[a]!);
    if (!bcast[a]) { off += i * stride; stride *= ext[a]!; }
  }
  return off;
}

/** Runs one elementwise case: data (values per input, in its broadcast shape) -> a job and its expected outcome. */
function ewJob(name: string, c: EwCase, ext: readonly number[], data: number[][], preset: number, label: string): { job: Job; o: Omit<Outcome, "got" | "outs">; reads: number } {
  const { k } = c;
  const n = numel(ext);
  const img = new Image();
  const ins = k.inputs.map((i, x) => img.put(encode(i.dtype, data[x]!)));
  const outs = [k.out, ...(k.extraOutputs ?? []).map((o) => o.dtype)].map((d) => ({ d, bytes: n * (d === "f32" ? 4 : 2) }));
  const pf = outs.map((o) => img.out(o.bytes));
  const pu = outs.map((o) => img.out(o.bytes));
  const flag = img.flag(preset);
  let want = 1;
  for (let o = 0; o < n; o++) {
    const vals = k.inputs.map((i, x) => seen(i.dtype, data[x]![bcastOffset(ext, i.bcast, o)]!));
    if (!storesFinite(k.out as FloatOut, c.ref(vals))) want = 0;
  }
  const job: Job = {
    image: img.bytes(),
    calls: [{ fn: name, args: [...ins, ...pf, flag, ...ext] }, { fn: `${name}_nf`, args: [...ins, ...pu, ...ext] }],
    reads: [flagRead(flag), ...outs.flatMap((o, i) => [[pf[i]!, o.bytes + GUARD], [pu[i]!, o.bytes + GUARD]] as const)],
  };
  return { job, o: { label: `${name} [${ext}] ${label}`, want: preset === 0 ? 0 : want, checked: { d: k.out as FloatOut, bytes: outs[0]!.bytes, preset } }, reads: outs.length };
}

/** Turns run results back into outcomes (reads: flag, then flagged/unflagged pairs of each output). */
function outcomesOf(built: { o: Omit<Outcome, "got" | "outs">; reads: number }[], res: Uint8Array[][]): Outcome[] {
  return built.map((b, n) => ({
    ...b.o,
    got: res[n]![0]!,
    outs: Array.from({ length: b.reads }, (_, i) => [res[n]![1 + 2 * i]!, res[n]![2 + 2 * i]!] as const),
  }));
}

function randomValues(d: DType, n: number, r: () => number): number[] {
  return Array.from({ length: n }, () => (d === "u8" ? Math.floor(r() * 256) : (r() * 2 - 1) * 10));
}

describe("elementwise kernels with a flag", () => {
  it("finite data keeps the flag; Inf/NaN in any input at the first, a middle and the last element clears it", async () => {
    const r = rng(11);
    const built: ReturnType<typeof ewJob>[] = [];
    for (const [name, c] of Object.entries(EW)) {
      for (const ext of c.exts) {
        const shapes = c.k.inputs.map((i) => numel(ext.map((e, a) => (i.bcast[a] ? 1 : e))));
        const clean = c.k.inputs.map((i, x) => randomValues(i.dtype, shapes[x]!, r));
        built.push(ewJob(name, c, ext, clean, 1, "finite"), ewJob(name, c, ext, clean, 0, "finite, flag already false"));
        c.k.inputs.forEach((i, x) => {
          if (i.dtype === "u8") return;
          const len = shapes[x]!;
          [...new Set([0, len >> 1, len - 1])].forEach((at, t) => {
            const data = clean.map((v) => v.slice());
            data[x]![at] = BAD[t % 3]!;
            built.push(ewJob(name, c, ext, data, 1, `${BAD[t % 3]} in input ${x} at ${at}`));
          });
        });
      }
    }
    expect(built.filter((b) => b.o.want === 0 && b.o.label.includes(" in input")).length).toBeGreaterThan(100);
    const res = await runJobs(Object.fromEntries(Object.entries(EW).map(([n, c]) => [n, { ...c.k, flag: true }])), built.map((b) => b.job));
    expectOutcomes(outcomesOf(built, res));
  });

  it("f16 and bf16 outputs are judged as stored: 65519 finite, 65520 and 70000 not; bf16 3.38e38 finite, 3.40e38 not", async () => {
    // a[r, c] + b[c] lands on the value tested; both vector lanes (column 0) and the scalar tail (column 6).
    const F16 = [[65519, 1], [nextDownF32(F16_INF_FROM), 1], [F16_INF_FROM, 0], [70000, 0], [-F16_INF_FROM, 0], [-65519, 1]] as const;
    const BF16 = [[3.38e38, 1], [nextDownF32(BF16_INF_FROM), 1], [BF16_INF_FROM, 0], [3.4e38, 0], [-3.4e38, 0]] as const;
    expect(F16_INF_FROM).toBe(65520);
    // The host encoders agree on the boundaries (a check of the thresholds, independent of the wasm code).
    expect([f32ToF16Bits(nextDownF32(F16_INF_FROM)), f32ToF16Bits(F16_INF_FROM)]).toEqual([0x7bff, 0x7c00]);
    expect([f32ToBf16Bits(nextDownF32(BF16_INF_FROM)), f32ToBf16Bits(BF16_INF_FROM)]).toEqual([0x7f7f, 0x7f80]);
    const built: ReturnType<typeof ewJob>[] = [];
    const ext = [2, 7];
    for (const [name, cases] of [["h16", F16], ["b16", BF16]] as const) {
      for (const [v, want] of cases) {
        for (const col of [0, 6]) {
          const a = new Array<number>(14).fill(1);
          const b = new Array<number>(7).fill(0.5);
          // f16: 60000 + (v - 60000), a sum exact in f32; bf16: v + 0 (v - 3e38 would round).
          const base = name === "h16" ? Math.sign(v) * 60000 : v;
          a[7 + col] = base;
          b[col] = Math.fround(v - base);
          expect(Math.fround(a[7 + col]! + b[col]!)).toBe(Math.fround(v));
          const j = ewJob(name, EW[name]!, ext, [a, b], 1, `${v} at column ${col}`);
          expect(j.o.want, `${name} ${v}`).toBe(want);
          built.push(j);
        }
      }
    }
    const specs = { h16: { ...EW.h16!.k, flag: true as const }, b16: { ...EW.b16!.k, flag: true as const } };
    expectOutcomes(outcomesOf(built, await runJobs(specs, built.map((b) => b.job))));
  });

  it("an integer or bool output with a flag is a compiler bug", async () => {
    for (const out of ["i32", "bool"] as const) {
      const k: ElementwiseKernel = { kind: "elementwise", rank: 1, inputs: [{ dtype: "i32", bcast: [false] }], out, expr: out === "i32" ? inp(0) : cast(inp(0), "bool"), flag: true };
      await expect(buildWasmModule([{ name: "k", spec: k }])).rejects.toThrow(/finite flag/);
    }
  });
});

// ---- reduce kernels ----

interface RdCase {
  readonly k: ReduceKernel;
  /** The value reduced at each element, from the input values (the prologue's expression); default the input. */
  readonly value?: (v: readonly number[]) => number;
  readonly exts: readonly (readonly number[])[];
}

const rd = (op: ReduceKernel["op"], reduced: boolean[], extra: Partial<ReduceKernel> = {}): ReduceKernel =>
  ({ kind: "reduce", op, dtype: "f32", rank: reduced.length, reduced, ...extra });
const R2 = [[1, 1], [3, 5], [2, 8], [4, 33], [5, 1], [1, 17], [3, 0], [0, 5]];
const R3 = [[2, 3, 5], [3, 4, 9], [2, 1, 8], [2, 0, 3]];

const RD: Record<string, RdCase> = {
  // Only the inner axis reduced: checked at the one store per output row.
  sum_inner: { k: rd("sum", [false, true]), exts: R2 },
  max_inner: { k: rd("max", [false, true]), exts: R2 },
  min_inner: { k: rd("min", [false, true]), exts: R2 },
  mean_inner: { k: rd("mean", [false, true]), exts: R2 },
  sum_all: { k: rd("sum", [true, true]), exts: R2 },
  // A kept inner axis or a reduced outer one: out is read back after the walk (mean: in its division pass).
  sum_outer: { k: rd("sum", [true, false]), exts: R2 },
  max_outer: { k: rd("max", [true, false]), exts: R2 },
  mean_outer: { k: rd("mean", [true, false]), exts: R2 },
  sum_mid: { k: rd("sum", [false, true, false]), exts: R3 },
  min_ends: { k: rd("min", [true, false, true]), exts: R3 },
  rank0: { k: rd("sum", []), exts: [[]] },
  // Prologues: a broadcast factor; softmax's exp(x - max) also stored (flag after `stored`); two reduced groups
  // split by a broadcast pattern.
  pro_mul: {
    k: rd("sum", [false, true], { prologue: { inputs: [f32In(2), f32In(2, [true, false])], expr: op("mul", "f32", inp(0), inp(1)) } }),
    value: ([a, b]) => a! * b!, exts: R2,
  },
  pro_stored: {
    k: rd("sum", [false, true], { prologue: { inputs: [f32In(2), f32In(2, [false, true])], expr: op("exp", "f32", op("sub", "f32", inp(0), inp(1))), stored: true } }),
    value: ([x, m]) => Math.exp(x! - m!), exts: R2,
  },
  pro_stored_outer: {
    k: rd("sum", [true, false], { prologue: { inputs: [f32In(2), f32In(2, [true, false])], expr: op("exp", "f32", op("sub", "f32", inp(0), inp(1))), stored: true } }),
    value: ([x, m]) => Math.exp(x! - m!), exts: R2,
  },
  pro_split: {
    k: rd("max", [true, true], { prologue: { inputs: [f32In(2), f32In(2, [true, false])], expr: add("f32", inp(0), inp(1)) } }),
    value: ([a, b]) => a! + b!, exts: R2,
  },
};

/** Float64 reference of the reduction (NaN-propagating max/min like f32.max/min), then rounded to f32. */
function refReduce(c: RdCase, ext: readonly number[], data: number[][]): number[] {
  const { k } = c;
  const inputs = k.prologue?.inputs ?? [f32In(k.rank)];
  const keptExt = ext.filter((_, a) => !k.reduced[a]);
  const init = k.op === "max" ? -Infinity : k.op === "min" ? Infinity : 0;
  const out = new Array<number>(numel(keptExt)).fill(init);
  for (let i = 0; i < numel(ext); i++) {
    const v = (c.value ?? (([x]) => x!))(inputs.map((inp, x) => Math.fround(data[x]![bcastOffset(ext, inp.bcast, i)]!)));
    const o = bcastOffset(ext, k.reduced, i);
    out[o] = k.op === "max" ? Math.max(out[o]!, v) : k.op === "min" ? Math.min(out[o]!, v) : out[o]! + v;
  }
  const count = numel(ext.filter((_, a) => k.reduced[a]));
  return out.map((v) => Math.fround(k.op === "mean" ? v / count : v));
}

function rdJob(name: string, c: RdCase, ext: readonly number[], data: number[][], preset: number, label: string): { job: Job; o: Omit<Outcome, "got" | "outs">; reads: number } {
  const { k } = c;
  const nOut = numel(ext.filter((_, a) => !k.reduced[a]));
  const img = new Image();
  const ins = data.map((v) => img.put(Float32Array.from(v)));
  const stored = k.prologue?.stored ? [4 * numel(ext)] : [];
  const pf = [4 * nOut, ...stored].map((b) => img.out(b));
  const pu = [4 * nOut, ...stored].map((b) => img.out(b));
  const flag = img.flag(preset);
  const want = preset === 1 && refReduce(c, ext, data).every((v) => storesFinite("f32", v)) ? 1 : 0;
  const sizes = [4 * nOut, ...stored];
  const job: Job = {
    image: img.bytes(),
    calls: [{ fn: name, args: [...ins, ...pf, flag, ...ext] }, { fn: `${name}_nf`, args: [...ins, ...pu, ...ext] }],
    reads: [flagRead(flag), ...sizes.flatMap((b, i) => [[pf[i]!, b + GUARD], [pu[i]!, b + GUARD]] as const)],
  };
  return { job, o: { label: `${name} [${ext}] ${label}`, want, checked: { d: "f32", bytes: 4 * nOut, preset } }, reads: sizes.length };
}

describe("reduce kernels with a flag", () => {
  it("every axis pattern and prologue: finite, empty and planted Inf/NaN inputs, judged on the reduced values", async () => {
    const r = rng(23);
    const built: ReturnType<typeof rdJob>[] = [];
    for (const [name, c] of Object.entries(RD)) {
      const inputs = c.k.prologue?.inputs ?? [f32In(c.k.rank)];
      for (const ext of c.exts) {
        const shapes = inputs.map((i) => numel(ext.map((e, a) => (i.bcast[a] ? 1 : e))));
        const clean = shapes.map((n) => randomValues("f32", n, r));
        built.push(rdJob(name, c, ext, clean, 1, "finite"), rdJob(name, c, ext, clean, 0, "finite, flag already false"));
        shapes.forEach((len, x) => {
          if (len === 0) return;
          [...new Set([0, len >> 1, len - 1])].forEach((at) => BAD.forEach((bad) => {
            const data = clean.map((v) => v.slice());
            data[x]![at] = bad;
            built.push(rdJob(name, c, ext, data, 1, `${bad} in input ${x} at ${at}`));
          }));
        });
      }
    }
    // Both outcomes occur among the planted cases (max ignores a -Inf beside larger values; exp(-Inf) is 0).
    const planted = built.filter((b) => b.o.label.includes(" in input"));
    expect(planted.filter((b) => b.o.want === 0).length).toBeGreaterThan(200);
    expect(planted.filter((b) => b.o.want === 1).length).toBeGreaterThan(20);
    // Empty reductions store the identity: sum's 0 keeps the flag, max's -Inf and mean's 0/0 clear it.
    const empty = (n: string) => built.find((b) => b.o.label === `${n} [3,0] finite`)!.o.want;
    expect([empty("sum_inner"), empty("max_inner"), empty("mean_inner")]).toEqual([1, 0, 0]);
    const specs = Object.fromEntries(Object.entries(RD).map(([n, c]) => [n, { ...c.k, flag: true as const }]));
    expectOutcomes(outcomesOf(built, await runJobs(specs, built.map((b) => b.job))));
  });

  it("an f32 sum that overflows clears the flag, whichever axis is reduced", async () => {
    const built = (["sum_inner", "sum_outer", "sum_all", "pro_mul"] as const).map((name) => {
      const c = RD[name]!;
      const data = [[1, 3e38, 3e38, 2, 1, 3e38, 3e38, 3]];
      if (c.k.prologue) data.push([1, 1, 1, 1]);
      return rdJob(name, c, [2, 4], data, 1, "3e38 + 3e38");
    });
    expect(built.map((b) => b.o.want)).toEqual([0, 0, 0, 0]);
    const specs = Object.fromEntries(Object.entries(RD).map(([n, c]) => [n, { ...c.k, flag: true as const }]));
    expectOutcomes(outcomesOf(built, await runJobs(specs, built.map((b) => b.job))));
  });

  it("an i32 reduce with a flag is a compiler bug", async () => {
    const k: ReduceKernel = { kind: "reduce", op: "sum", dtype: "i32", rank: 1, reduced: [true], flag: true };
    await expect(buildWasmModule([{ name: "k", spec: k }])).rejects.toThrow(/finite flag/);
  });
});

// ---- matmul kernels ----

const mm = (o: Partial<MatmulKernel> = {}): MatmulKernel => ({ kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [], ...o });
/** An epilogue adding a bias broadcast over rows (and batches), stored as `out`. */
const biasEpi = (out: FloatOut, batchRank = 0, singleK?: true): MatmulKernel["epilogue"] => ({
  inputs: [{ dtype: "f32", bcast: [...new Array<boolean>(batchRank).fill(true), true, false] }],
  expr: out === "f32" ? add("f32", inp(0), inp(1)) : cast(add("f32", inp(0), inp(1)), out),
  out,
  ...(singleK ? { singleK } : {}),
});

// Row counts leave 1..5 rows in the last band of MR = 4 or 6 (and 100 crosses MC = 96); K = 300 spans two KC blocks.
const MM_SIZES: [number, number, number][] = [[1, 3, 5], [5, 7, 9], [7, 2, 16], [13, 300, 11], [100, 20, 13]];
const MM_SMALLK = MM_SIZES.filter(([, K]) => K <= 256);
interface MmCase { readonly k: MatmulKernel; readonly sizes: readonly [number, number, number][]; readonly bext?: readonly number[] }

const MM: Record<string, MmCase> = {
  nn: { k: mm(), sizes: [...MM_SIZES, [3, 0, 5]] },
  tn: { k: mm({ transA: true }), sizes: MM_SIZES },
  nt: { k: mm({ transB: true }), sizes: MM_SIZES },
  tt: { k: mm({ transA: true, transB: true }), sizes: MM_SIZES },
  batched: { k: mm({ batchRank: 2, aBcast: [false, true], bBcast: [true, false] }), sizes: [[5, 7, 9], [7, 260, 6]], bext: [2, 3] },
  epi_f32: { k: mm({ epilogue: biasEpi("f32") }), sizes: [...MM_SIZES, [3, 0, 5]] },
  // f16 out with K known to fit one block: MR-row bands stored as they finish ("band").
  epi_h16_single: { k: mm({ epilogue: biasEpi("f16", 0, true) }), sizes: MM_SMALLK },
  // K unknown when compiled: the band path when this call's K fits one block, else staged mc x nc sums ("block").
  epi_h16: { k: mm({ epilogue: biasEpi("f16") }), sizes: [...MM_SIZES, [3, 0, 5]] },
  epi_b16_tt: { k: mm({ transA: true, transB: true, epilogue: biasEpi("bf16") }), sizes: MM_SIZES },
  epi_h16_batched: { k: mm({ batchRank: 1, aBcast: [false], bBcast: [true], transB: true, epilogue: biasEpi("f16", 1) }), sizes: [[5, 7, 9], [13, 300, 11]], bext: [2] },
};

interface MmData {
  readonly a: number[];
  readonly b: number[];
  readonly bias: number[];
}

/** Logical A[t][i][k] / B[t][k][j] accessors over the stored layouts (transposed, broadcast batches). */
function mmAccess(c: MmCase, M: number, K: number, N: number, d: MmData) {
  const { k } = c;
  const bext = c.bext ?? [];
  const batchOff = (bc: readonly boolean[], t: number): number => bcastOffset(bext, bc, t);
  return {
    A: (t: number, i: number, q: number) => d.a[batchOff(k.aBcast, t) * M * K + (k.transA ? q * M + i : i * K + q)]!,
    B: (t: number, q: number, j: number) => d.b[batchOff(k.bBcast, t) * K * N + (k.transB ? j * K + q : q * N + j)]!,
    aIndex: (t: number, i: number, q: number) => batchOff(k.aBcast, t) * M * K + (k.transA ? q * M + i : i * K + q),
  };
}

/** Whether every element of rows [m0, m1) (every batch) stores finite: float64 sums, then the epilogue in f32. */
function mmWant(c: MmCase, M: number, K: number, N: number, d: MmData, rows: readonly (readonly [number, number])[]): number {
  const acc = mmAccess(c, M, K, N, d);
  const outD = (c.k.epilogue?.out ?? "f32") as FloatOut;
  for (let t = 0; t < numel(c.bext ?? []); t++) {
    for (const [m0, m1] of rows) {
      for (let i = m0; i < m1; i++) for (let j = 0; j < N; j++) {
        let s = 0;
        for (let q = 0; q < K; q++) s += acc.A(t, i, q) * acc.B(t, q, j);
        const v = c.k.epilogue ? Math.fround(s) + d.bias[j]! : s;
        if (!storesFinite(outD, v)) return 0;
      }
    }
  }
  return 1;
}

/** One job: the flagged kernel and its unflagged twin over the same rows (one or several [m0, m1) chunks). */
function mmJob(name: string, c: MmCase, [M, K, N]: readonly [number, number, number], d: MmData, rows: readonly (readonly [number, number])[], label: string): { job: Job; o: Omit<Outcome, "got" | "outs">; reads: number } {
  const bext = c.bext ?? [];
  const outD = (c.k.epilogue?.out ?? "f32") as FloatOut;
  const outBytes = numel(bext) * M * N * (outD === "f32" ? 4 : 2);
  const img = new Image();
  const pa = img.put(Float32Array.from(d.a));
  const pb = img.put(Float32Array.from(d.b));
  const pe = c.k.epilogue ? [img.put(Float32Array.from(d.bias))] : [];
  const scratch = img.alloc(matmulScratchBytes(M, K, N, "block"));
  const [pf, pu] = [img.out(outBytes), img.out(outBytes)];
  const flag = img.flag(1);
  const calls = rows.flatMap(([m0, m1]) => [
    { fn: name, args: [pa, pb, scratch, ...pe, pf, flag, ...bext, M, K, N, m0, m1] },
    { fn: `${name}_nf`, args: [pa, pb, scratch, ...pe, pu, ...bext, M, K, N, m0, m1] },
  ]);
  const whole = rows.length === 1 && rows[0]![0] === 0 && rows[0]![1] === M;
  return {
    job: { image: img.bytes(), calls, reads: [flagRead(flag), [pf, outBytes + GUARD], [pu, outBytes + GUARD]] },
    o: { label: `${name} M=${M} K=${K} N=${N} rows ${rows.map((r) => `[${r}]`).join("")} ${label}`, want: mmWant(c, M, K, N, d, rows), ...(whole ? { checked: { d: outD, bytes: outBytes, preset: 1 } } : {}) },
    reads: 1,
  };
}

/** Finite data, a planted Inf/NaN in a row of A (first, middle, last), in a column of B and in the bias. */
function mmJobs(name: string, c: MmCase, size: readonly [number, number, number], r: () => number): ReturnType<typeof mmJob>[] {
  const [M, K, N] = size;
  const nb = (bc: readonly boolean[]) => numel((c.bext ?? []).map((e, q) => (bc[q] ? 1 : e)));
  const clean: MmData = {
    a: randomValues("f32", nb(c.k.aBcast) * M * K, r).map((x) => x / 10),
    b: randomValues("f32", nb(c.k.bBcast) * K * N, r).map((x) => x / 10),
    bias: randomValues("f32", N, r),
  };
  const all = [[0, M]] as const;
  const jobs = [mmJob(name, c, size, clean, all, "finite")];
  if (K === 0 || M === 0) return jobs;
  const acc = mmAccess(c, M, K, N, clean);
  const big = M * K > 2000;
  [0, M >> 1, M - 1].forEach((row, t) => (big ? [BAD[t]!] : BAD).forEach((bad) => {
    const a = clean.a.slice();
    a[acc.aIndex(0, row, Math.min(K - 1, 2))] = bad;
    const d = { ...clean, a };
    const label = `${bad} in A row ${row}`;
    jobs.push(mmJob(name, c, size, d, all, label), mmJob(name, c, size, d, [[row, row + 1]], label));
    // Row chunks without the bad row keep the flag; two chunks (the thread pool's split) clear it once.
    if (row > 0) jobs.push(mmJob(name, c, size, d, [[0, row]], label));
    if (row < M - 1) jobs.push(mmJob(name, c, size, d, [[row + 1, M]], label));
    if (M > 1) jobs.push(mmJob(name, c, size, d, [[0, M >> 1], [M >> 1, M]], label));
  }));
  const b = clean.b.slice();
  b[b.length - 1] = NaN;
  jobs.push(mmJob(name, c, size, { ...clean, b }, all, "NaN in B's last element"));
  if (c.k.epilogue) {
    const bias = clean.bias.slice();
    bias[N - 1] = -Infinity;
    jobs.push(mmJob(name, c, size, { ...clean, bias }, all, "-Inf in the last bias"));
  }
  return jobs;
}

/** Rows of A summing to `v` against B = ones (f16: 60000 + (v - 60000), exact; bf16: v + 0s), in two rows. */
function thresholdJobs(name: string, c: MmCase, size: readonly [number, number, number], v: number): ReturnType<typeof mmJob>[] {
  const [M, K, N] = size;
  const acc = mmAccess(c, M, K, N, { a: [], b: [], bias: [] });
  const a = new Array<number>(M * K).fill(0.25);
  const base = c.k.epilogue?.out === "bf16" ? v : Math.sign(v) * 60000;
  for (const row of [0, M - 1]) {
    for (let q = 0; q < K; q++) a[acc.aIndex(0, row, q)] = 0;
    a[acc.aIndex(0, row, 0)] = base;
    a[acc.aIndex(0, row, 1)] = Math.fround(v - base);
  }
  const d: MmData = { a, b: new Array<number>(K * N).fill(1), bias: new Array<number>(N).fill(0) };
  return [mmJob(name, c, size, d, [[0, M]], `sum ${v}`), mmJob(name, c, size, d, [[1, M - 1]], `sum ${v} outside the rows`)];
}

function thresholdCases(): { jobs: ReturnType<typeof mmJob>[]; wants: number[] } {
  const jobs: ReturnType<typeof mmJob>[] = [];
  const wants: number[] = [];
  const add = (name: string, sizes: [number, number, number][], vals: readonly (readonly [number, number])[]) => {
    for (const size of sizes) for (const [v, want] of vals) {
      jobs.push(...thresholdJobs(name, MM[name]!, size, v));
      wants.push(want, 1);
    }
  };
  const F16 = [[65519, 1], [65520, 0], [70000, 0], [-65520, 0]] as const;
  add("epi_h16_single", [[7, 5, 13], [13, 200, 9]], F16);
  add("epi_h16", [[7, 5, 13], [13, 300, 9]], F16);
  add("epi_b16_tt", [[7, 5, 13], [13, 300, 9]], [[3.38e38, 1], [3.4e38, 0], [BF16_INF_FROM, 0], [nextDownF32(BF16_INF_FROM), 1]]);
  return { jobs, wants };
}

describe("matmul kernels with a flag", () => {
  const specs = Object.fromEntries(Object.entries(MM).map(([n, c]) => [n, { ...c.k, flag: true as const }]));
  const r = rng(31);
  const built = Object.entries(MM).flatMap(([name, c]) => c.sizes.flatMap((size) => mmJobs(name, c, size, r)));
  const thresholds = thresholdCases();

  it("the cases cover both outcomes, row ranges that exclude the bad row, and the format thresholds", () => {
    expect(built.filter((b) => b.o.want === 0).length).toBeGreaterThan(300);
    expect(built.filter((b) => b.o.want === 1 && b.o.label.includes(" in A row")).length).toBeGreaterThan(100);
    expect(thresholds.jobs.map((j) => j.o.want)).toEqual(thresholds.wants);
  });

  for (const simd of ["plain", "relaxed"] as const) {
    it(`${simd} build (MR = ${MICRO[simd].mr}): every path keeps or clears the flag as stored, outputs unchanged`, async () => {
      const all = [...built, ...thresholds.jobs];
      expectOutcomes(outcomesOf(all, await runJobs(specs, all.map((b) => b.job), simd)));
    }, 120_000);
  }
});
