// Test reference for the int8 kernels: the same arithmetic in plain JS (every f32 step through Math.fround), and
// helpers to build and run qmatmul kernels on the wasm backend in isolation.
import type { QMatmulKernel } from "../../compiler/codegen/kernel.js";
import { instantiate, type Instance } from "../codegen/wasm-harness.js";
import { packWeight, qpWords, quantizeU8, rangeToQuant, rint, type LinearQuant, type QuantizedWeight } from "../../runtime/quantize/math.js";
import { WASM_QPACKING } from "../../compiler/codegen/wasm/qmatmul-layout.js";
import { qmatmulScratchBytes } from "../../compiler/codegen/wasm/qmatmul-layout.js";

export const kernelName = (k: QMatmulKernel) => `q_${k.input}_${k.output}${k.bias ? "_b" : ""}${k.relu ? "_r" : ""}`;

export async function qInstance(specs: QMatmulKernel[]): Promise<Instance> {
  return instantiate(specs.map((spec) => ({ name: kernelName(spec), spec })), { optimize: true });
}

/** Random int8 weight in [-127, 127] with made-up positive scales, as a [K, N] (or [N, K]) param. */
export function randomWeight(r: () => number, K: number, N: number, transposed = false): QuantizedWeight {
  const q = new Int8Array(K * N);
  for (let i = 0; i < q.length; i++) q[i] = Math.floor(r() * 255) - 127;
  const scales = Float32Array.from({ length: N }, () => Math.fround(0.001 + r() * 0.02));
  return { q, scales, K, N, transposed };
}

const wAt = (w: QuantizedWeight, k: number, n: number) => w.q[w.transposed ? n * w.K + k : k * w.N + n]!;

/** Per row: the multiplier and the integer operand values (q - zero point) the kernel feeds its dot products. */
function rowOperands(spec: QMatmulKernel, a: Float32Array | Uint8Array, m: number, K: number, qin?: LinearQuant): { sa: number; v: Int32Array } {
  const v = new Int32Array(K);
  if (spec.input === "q8") {
    for (let k = 0; k < K; k++) v[k] = a[m * K + k]! - qin!.zeroPoint;
    return { sa: qin!.scale, v };
  }
  let p = qin!;
  let nan = false;
  if (spec.input === "dynamic") {
    let lo = 0, hi = 0;
    for (let k = 0; k < K; k++) {
      lo = Math.min(lo, a[m * K + k]!);
      hi = Math.max(hi, a[m * K + k]!);
    }
    p = rangeToQuant(lo, hi);
  }
  for (let k = 0; k < K; k++) {
    const x = a[m * K + k]!;
    if (Number.isNaN(x) || (spec.input === "dynamic" && !Number.isFinite(x))) nan = true;
    v[k] = quantizeU8(x, p) - p.zeroPoint;
  }
  return { sa: nan ? NaN : p.scale, v };
}

/** What the kernel must compute, exactly. */
export function refQMatmul(
  spec: QMatmulKernel, a: Float32Array | Uint8Array, M: number, K: number, w: QuantizedWeight,
  opts: { bias?: Float32Array; qin?: LinearQuant; qout?: LinearQuant } = {},
): Float32Array | Int32Array | Uint8Array {
  const N = w.N;
  const out = spec.output === "f32" ? new Float32Array(M * N) : spec.output === "i32" ? new Int32Array(M * N) : new Uint8Array(M * N);
  for (let m = 0; m < M; m++) {
    const { sa, v } = rowOperands(spec, a, m, K, opts.qin);
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += v[k]! * wAt(w, k, n);
      if (spec.output === "i32") {
        out[m * N + n] = acc;
        continue;
      }
      let y = Math.fround(Math.fround(acc) * Math.fround(sa * w.scales[n]!));
      if (spec.bias) y = Math.fround(y + opts.bias![n]!);
      if (spec.relu) y = Math.max(y, 0);
      if (spec.output === "f32") out[m * N + n] = y;
      else {
        const q = Math.fround(rint(Math.fround(y / opts.qout!.scale)) + opts.qout!.zeroPoint);
        out[m * N + n] = Number.isNaN(q) ? 0 : Math.max(0, Math.min(255, q));
      }
    }
  }
  return out;
}

/** Runs one kernel on the wasm instance (rows [m0, m1), default all) and returns its output. */
export function runQMatmul(
  inst: Instance, spec: QMatmulKernel, a: Float32Array | Uint8Array, M: number, K: number, w: QuantizedWeight,
  opts: { bias?: Float32Array; qin?: LinearQuant; qout?: LinearQuant; rows?: [number, number] } = {},
): Float32Array | Int32Array | Uint8Array {
  inst.reset();
  const N = w.N;
  const pa = inst.put(a);
  const pw = inst.put(packWeight(w, WASM_QPACKING));
  const pq = inst.put(qpWords(w, opts.qin, opts.qout));
  const pb = spec.bias ? [inst.put(opts.bias!)] : [];
  const ps = inst.alloc(qmatmulScratchBytes(K));
  const dt = spec.output === "f32" ? "f32" : spec.output === "i32" ? "i32" : "u8";
  const po = inst.out(dt, M * N);
  const [m0, m1] = opts.rows ?? [0, M];
  inst.run(kernelName(spec), pa, pw, pq, ...pb, ps, po, M, K, N, m0, m1);
  return inst.read(dt, po, M * N) as Float32Array | Int32Array | Uint8Array;
}
