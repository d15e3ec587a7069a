// Quantization arithmetic shared by the runtime's quantization pass (runtime/quantize/dynamic.ts) and its tests: int8
// per-channel weights, ONNX-style u8 activation ranges, and the weight packing each backend's kernels read.
// Every f32 step is rounded with Math.fround, so these agree bit for bit with the wasm kernels.

import { KilnError } from "../errors.js";
import { qpLayout, type QPacking } from "../manifest.js";

/** Round half to even (ONNX QuantizeLinear, PyTorch, wasm f32.nearest). */
export function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface QuantizedWeight {
  /** Int8 values in [-127, 127], in the param's own layout ([K, N], or [N, K] when transposed). */
  q: Int8Array;
  /** Per output channel n: w ≈ q * scale[n]; 0 for an all-zero channel (its q are all 0). */
  scales: Float32Array;
  K: number;
  N: number;
  transposed: boolean;
}

/**
 * Symmetric per-output-channel int8: scale[n] = max|w[:, n]| / 127, q = round(w / scale). NaN or infinite
 * weights are an error naming the tensor and element (nothing sensible can be quantized from them).
 */
export function quantizeWeight(name: string, data: Float32Array, K: number, N: number, transposed: boolean): QuantizedWeight {
  const at = transposed ? (k: number, n: number) => n * K + k : (k: number, n: number) => k * N + n;
  const absmax = new Float32Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const i = at(k, n);
      const v = data[i]!;
      if (!Number.isFinite(v)) {
        const idx = transposed ? `[${n}, ${k}]` : `[${k}, ${n}]`;
        throw new KilnError(`quantize: weight "${name}" has ${v} at element ${idx}; a weight with NaN or infinity cannot be quantized (fix the training first)`, { code: "non_finite", tensor: name });
      }
      const a = Math.abs(v);
      if (a > absmax[n]!) absmax[n] = a;
    }
  }
  const scales = new Float32Array(N);
  for (let n = 0; n < N; n++) scales[n] = Math.fround(absmax[n]! / 127);
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const s = scales[n]!;
      const i = at(k, n);
      // An all-zero channel keeps scale 0 and q = 0: it dequantizes to exact zeros, with no division by zero.
      q[i] = s === 0 ? 0 : Math.max(-127, Math.min(127, rint(Math.fround(data[i]! / s))));
    }
  }
  return { q, scales, K, N, transposed };
}

/** q * scale in the param's layout. */
export function dequantizeWeight(w: QuantizedWeight): Float32Array {
  const out = new Float32Array(w.q.length);
  for (let k = 0; k < w.K; k++) {
    for (let n = 0; n < w.N; n++) {
      const i = w.transposed ? n * w.K + k : k * w.N + n;
      out[i] = Math.fround(w.q[i]! * w.scales[n]!);
    }
  }
  return out;
}

/** Checks a quantized weight read from a file: scales finite and >= 0, q in [-127, 127], zero-scale channels all 0. */
export function checkQuantizedWeight(name: string, w: QuantizedWeight): void {
  const bad = (why: string): never => {
    throw new KilnError(`quantized weight "${name}": ${why}`, { code: "load_failed", tensor: name });
  };
  w.scales.forEach((s, n) => {
    if (!(Number.isFinite(s) && s >= 0)) bad(`scale of channel ${n} is ${s} (scales must be finite and >= 0)`);
  });
  for (let k = 0; k < w.K; k++) {
    for (let n = 0; n < w.N; n++) {
      const v = w.q[w.transposed ? n * w.K + k : k * w.N + n]!;
      if (v < -127) bad(`value ${v} is outside [-127, 127]`);
      if (v !== 0 && w.scales[n] === 0) bad(`channel ${n} has scale 0 but a nonzero value ${v}`);
    }
  }
}

/** Integer sum of each output channel's int8 values (the WGSL kernels' zero-point correction). */
export function columnSums(w: QuantizedWeight): Float32Array {
  const out = new Float32Array(w.N);
  for (let k = 0; k < w.K; k++) for (let n = 0; n < w.N; n++) out[n] += w.q[w.transposed ? n * w.K + k : k * w.N + n]!;
  return out;
}

/** The packed bytes of a quantized weight in a backend's layout (manifest.ts QPacking), zero-padded. */
export function packWeight(w: QuantizedWeight, p: QPacking): Uint8Array {
  const { K, N } = w;
  const G = Math.ceil(K / p.group);
  const panels = Math.ceil(N / p.nr);
  const count = panels * G * p.nr * p.group;
  const out = p.elem === "i16" ? new Int16Array(count) : new Int8Array(count);
  for (let n = 0; n < N; n++) {
    const panel = Math.floor(n / p.nr), c = n % p.nr;
    for (let k = 0; k < K; k++) {
      const v = w.q[w.transposed ? n * K + k : k * N + n]!;
      out[((panel * G + Math.floor(k / p.group)) * p.nr + c) * p.group + (k % p.group)] = v;
    }
  }
  return new Uint8Array(out.buffer);
}

export interface LinearQuant {
  scale: number;
  zeroPoint: number;
}

/**
 * ONNX DynamicQuantizeLinear's range rule: the range is widened to include 0, scale = (max - min) / 255, zero
 * point = round(clamp(-min / scale, 0, 255)). A range of width 0 (all zeros) gets scale 1 and zero point 0
 * instead of dividing by zero; NaN stays NaN (the kernels then output NaN for that row).
 */
export function rangeToQuant(min: number, max: number): LinearQuant {
  const lo = Math.min(0, Math.fround(min)), hi = Math.max(0, Math.fround(max));
  let scale = Math.fround(Math.fround(hi - lo) / 255);
  if (scale === 0) scale = 1;
  const zp = rint(Math.min(255, Math.max(0, Math.fround(-lo / scale))));
  return { scale, zeroPoint: Number.isNaN(zp) ? 0 : zp };
}

/** ONNX QuantizeLinear to u8: saturate(round(x / scale) + zero point), NaN -> 0 (as the wasm kernels do). */
export function quantizeU8(x: number, q: LinearQuant): number {
  const v = Math.fround(rint(Math.fround(Math.fround(x) / q.scale)) + q.zeroPoint);
  return Number.isNaN(v) ? 0 : Math.max(0, Math.min(255, v));
}

/** ONNX DynamicQuantizeLinear of a whole tensor: u8 values, scale and zero point. */
export function dynamicQuantizeLinear(x: ArrayLike<number>): { q: Uint8Array; scale: number; zeroPoint: number } {
  let lo = 0, hi = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.fround(x[i]!);
    lo = Number.isNaN(v) || Number.isNaN(lo) ? NaN : Math.min(lo, v);
    hi = Number.isNaN(v) || Number.isNaN(hi) ? NaN : Math.max(hi, v);
  }
  const p = rangeToQuant(lo, hi);
  const q = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = quantizeU8(x[i]!, p);
  return { q, ...p };
}

/** The f32 words of an int8 step's qp buffer (runtime/manifest.ts qpLayout). */
export function qpWords(w: QuantizedWeight, input?: LinearQuant, output?: LinearQuant): Float32Array {
  const L = qpLayout(w.N);
  const qp = new Float32Array(L.words);
  if (input) qp.set([input.scale, input.zeroPoint], 0);
  if (output) qp.set([output.scale, output.zeroPoint], 2);
  qp.set(w.scales, L.scales);
  qp.set(columnSums(w), L.colsums);
  return qp;
}
