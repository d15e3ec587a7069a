// JS reference of the augmentation kernels: the same operations in the same order as the wasm kernels of
// scripts/build-augment-wasm.mjs (f64 arithmetic, f32/u8 stores), so it is a bit-exact oracle in the tests and
// a fallback backend where wasm cannot be instantiated.

/** Image batch geometry: n samples of c planes of h x w. */
export interface Dims {
  n: number;
  c: number;
  h: number;
  w: number;
}

export type Pixels = Float32Array | Uint8Array;

/** What both backends implement; arrays are element arrays (not memory addresses). */
export interface AugmentBackend {
  readonly name: "wasm" | "js";
  /** flags: per sample, bit 0 horizontal, bit 1 vertical. */
  flip(src: Pixels, dst: Pixels, d: Dims, flags: Uint8Array): void;
  /** params: per sample [cos, sin] of the counter-clockwise angle. */
  rotate(src: Pixels, dst: Pixels, d: Dims, params: Float64Array, fill: number): void;
  /** offsets: per sample [dy, dx]: output (y, x) reads input (y + dy, x + dx), fill outside. */
  crop(src: Pixels, dst: Pixels, d: Dims, oh: number, ow: number, offsets: Int32Array, fill: number): void;
  /** stats: per channel [mean, std]. */
  normalize(src: Float32Array, dst: Float32Array, n: number, c: number, plane: number, stats: Float64Array): void;
  /** u8 -> f32 / 255; hwc: src is [n, h, w, c] and dst [n, c, h, w]. */
  toTensor(src: Uint8Array, dst: Float32Array, d: Dims, hwc: boolean): void;
}

// u8 stores round half up and clamp, like the kernel's floor(v + 0.5) then min/max.
function store(dst: Pixels, i: number, v: number): void {
  dst[i] = dst instanceof Uint8Array ? Math.min(255, Math.max(0, Math.floor(v + 0.5))) : v;
}

function flip(src: Pixels, dst: Pixels, d: Dims, flags: Uint8Array): void {
  const { n, c, h, w } = d;
  for (let s = 0; s < n; s++) {
    const f = flags[s]!;
    for (let ch = 0; ch < c; ch++) {
      const base = (s * c + ch) * h * w;
      for (let y = 0; y < h; y++) {
        const sy = f & 2 ? h - 1 - y : y;
        for (let x = 0; x < w; x++) dst[base + y * w + x] = src[base + sy * w + (f & 1 ? w - 1 - x : x)]!;
      }
    }
  }
}

function rotate(src: Pixels, dst: Pixels, d: Dims, params: Float64Array, fill: number): void {
  const { n, c, h, w } = d;
  const cx = (w - 1) * 0.5;
  const cy = (h - 1) * 0.5;
  for (let s = 0; s < n; s++) {
    const cos = params[2 * s]!;
    const sin = params[2 * s + 1]!;
    for (let ch = 0; ch < c; ch++) {
      const plane = (s * c + ch) * h * w;
      const p = (yy: number, xx: number) => (yy >>> 0 < h && xx >>> 0 < w ? src[plane + yy * w + xx]! : fill);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const dx = x - cx;
          const dy = y - cy;
          const xs = cx + cos * dx - sin * dy;
          const ys = cy + sin * dx + cos * dy;
          const x0 = Math.floor(xs);
          const y0 = Math.floor(ys);
          const fx = xs - x0;
          const fy = ys - y0;
          const v = (1 - fy) * ((1 - fx) * p(y0, x0) + fx * p(y0, x0 + 1)) + fy * ((1 - fx) * p(y0 + 1, x0) + fx * p(y0 + 1, x0 + 1));
          store(dst, plane + y * w + x, v);
        }
      }
    }
  }
}

function crop(src: Pixels, dst: Pixels, d: Dims, oh: number, ow: number, offsets: Int32Array, fill: number): void {
  const { n, c, h, w } = d;
  for (let s = 0; s < n; s++) {
    const oy = offsets[2 * s]!;
    const ox = offsets[2 * s + 1]!;
    for (let ch = 0; ch < c; ch++) {
      const plane = (s * c + ch) * h * w;
      const out = (s * c + ch) * oh * ow;
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const yy = y + oy;
          const xx = x + ox;
          store(dst, out + y * ow + x, yy >>> 0 < h && xx >>> 0 < w ? src[plane + yy * w + xx]! : fill);
        }
      }
    }
  }
}

function normalize(src: Float32Array, dst: Float32Array, n: number, c: number, plane: number, stats: Float64Array): void {
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < c; ch++) {
      const mean = stats[2 * ch]!;
      const std = stats[2 * ch + 1]!;
      const base = (s * c + ch) * plane;
      for (let i = 0; i < plane; i++) dst[base + i] = (src[base + i]! - mean) / std;
    }
  }
}

function toTensor(src: Uint8Array, dst: Float32Array, d: Dims, hwc: boolean): void {
  const { n, c, h, w } = d;
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const o = ((s * c + ch) * h + y) * w + x;
          dst[o] = src[hwc ? ((s * h + y) * w + x) * c + ch : o]! / 255;
        }
      }
    }
  }
}

export const jsAugment: AugmentBackend = { name: "js", flip, rotate, crop, normalize, toTensor };
