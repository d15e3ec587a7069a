// Seeded image augmentation (torchvision-style transforms) running on the wasm kernels of augment-kernels.ts:
// flips, bilinear rotation, crop with padding, normalize, u8 -> f32. Each applies to one sample ([C, H, W] or
// [H, W]) or, with `batched`, to a batch ([N, C, H, W] or [N, H, W]) drawing random parameters per sample.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { DType } from "../dtype.js";
import type { Rng } from "../rng.js";
import { augmentBackend, type AugmentBackendName } from "./augment-kernels.js";
import type { AugmentBackend, Dims, Pixels } from "./augment-ref.js";
import { randomInt } from "./random.js";

export interface ApplyOptions {
  /** Axis 0 is the batch: each sample draws its own random parameters (default false: x is one sample). */
  batched?: boolean;
  /** Output tensors to reuse (the loader passes one pool per batch slot); without it every output is fresh. */
  buffers?: BufferPool;
}

export interface Transform {
  readonly name: string;
  /** A new (or pooled) tensor; x is never modified. */
  apply(x: Tensor, rng: Rng, opts?: ApplyOptions): Tensor;
}

export interface BackendOption {
  /** "wasm" (default): the generated kernels; "js": the reference implementation. */
  backend?: AugmentBackendName;
}

/**
 * Reusable output tensors, by owner (a transform), dtype and shape. A shape with a smaller first dim (a short last
 * batch) is a view of a larger held tensor, so it costs no buffer. Never hands out memory of the tensor it must read.
 */
export class BufferPool {
  readonly #byOwner = new Map<object, Tensor[]>();

  get<D extends DType>(owner: object, dtype: D, shape: readonly number[], avoid?: Tensor): Tensor<D> {
    let list = this.#byOwner.get(owner);
    if (!list) this.#byOwner.set(owner, (list = []));
    const usable = (t: Tensor) => t.dtype === dtype && t.data.buffer !== avoid?.data.buffer;
    const hit = list.find((t) => usable(t) && sameShape(t.shape, shape));
    if (hit) return hit as Tensor<D>;
    const base = list.find((t) => usable(t) && t.rank === shape.length && t.rank > 0 && t.shape[0]! >= shape[0]! && sameShape(t.shape.slice(1), shape.slice(1)));
    const size = shape.reduce((a, b) => a * b, 1);
    const t = base ? new Tensor(dtype, shape, base.data.subarray(0, size) as Tensor<D>["data"]) : new Tensor(dtype, shape);
    list.push(t);
    return t;
  }

  /** Number of tensors held (for tests and memory accounting). */
  get size(): number {
    let n = 0;
    for (const l of this.#byOwner.values()) n += l.length;
    return n;
  }
}

/** Applies transforms in order (like torchvision.transforms.Compose). */
export function compose(transforms: readonly Transform[]): Transform {
  const list = [...transforms];
  return {
    name: `compose(${list.map((t) => t.name).join(", ")})`,
    apply(x: Tensor, rng: Rng, opts: ApplyOptions = {}): Tensor {
      return list.reduce((acc, t) => t.apply(acc, rng, opts), x);
    },
  };
}

/** Flips each sample left-right with probability p. */
export function randomHorizontalFlip(opts: { p?: number } & BackendOption = {}): Transform {
  return flipTransform("randomHorizontalFlip", 1, opts);
}

/** Flips each sample upside down with probability p. */
export function randomVerticalFlip(opts: { p?: number } & BackendOption = {}): Transform {
  return flipTransform("randomVerticalFlip", 2, opts);
}

function flipTransform(name: string, bit: number, opts: { p?: number } & BackendOption): Transform {
  const p = opts.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new KilnError(`${name}: p ${p} is not in [0, 1]`, { code: "bad_option" });
  const flags = new Scratch(Uint8Array);
  const self: Transform = {
    name,
    apply(x, rng, o = {}) {
      const d = imageDims(x, o, name, ["f32", "u8"]);
      const f = flags.get(d.n);
      for (let s = 0; s < d.n; s++) f[s] = rng.uniform() < p ? bit : 0;
      const out = output(self, x, x.dtype, x.shape, o);
      backendOf(opts).flip(x.data as Pixels, out.data as Pixels, d, f);
      return out;
    },
  };
  return self;
}

export interface RotationOptions extends BackendOption {
  /** Angle range in degrees, counter-clockwise: [min, max], or d for [-d, d]. */
  degrees: number | readonly [number, number];
  /** Value of pixels that come from outside the image (default 0; an integer 0..255 for u8 images). */
  fill?: number;
}

/** Rotates each sample about its centre by a uniform random angle, bilinear, filling outside pixels. */
export function randomRotation(opts: RotationOptions): Transform {
  const name = "randomRotation";
  const [lo, hi] = typeof opts.degrees === "number" ? [-Math.abs(opts.degrees), Math.abs(opts.degrees)] : opts.degrees;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) throw new KilnError(`${name}: degrees [${lo}, ${hi}] is not a finite range`, { code: "bad_option" });
  const fill = opts.fill ?? 0;
  const params = new Scratch(Float64Array);
  const self: Transform = {
    name,
    apply(x, rng, o = {}) {
      const d = imageDims(x, o, name, ["f32", "u8"]);
      checkFill(fill, x.dtype, name);
      const pr = params.get(2 * d.n);
      for (let s = 0; s < d.n; s++) {
        const rad = (rng.uniform(lo, hi) * Math.PI) / 180;
        pr[2 * s] = snap(Math.cos(rad));
        pr[2 * s + 1] = snap(Math.sin(rad));
      }
      const out = output(self, x, x.dtype, x.shape, o);
      backendOf(opts).rotate(x.data as Pixels, out.data as Pixels, d, pr, fill);
      return out;
    },
  };
  return self;
}

export interface CropOptions extends BackendOption {
  /** Output [height, width], or s for [s, s]. */
  size: number | readonly [number, number];
  /** Fill added on each side before cropping: p, or [top/bottom, left/right] (default 0). */
  padding?: number | readonly [number, number];
  fill?: number;
}

/** Pads each sample by `padding` and takes a random `size` crop of it (torchvision RandomCrop). */
export function randomCrop(opts: CropOptions): Transform {
  const name = "randomCrop";
  const [oh, ow] = typeof opts.size === "number" ? [opts.size, opts.size] : opts.size;
  const [py, px] = typeof opts.padding === "number" ? [opts.padding, opts.padding] : (opts.padding ?? [0, 0]);
  for (const [k, v] of [["size", oh], ["size", ow], ["padding", py], ["padding", px]] as const) {
    if (!Number.isInteger(v) || v < (k === "size" ? 1 : 0)) throw new KilnError(`${name}: ${k} ${v} is not a ${k === "size" ? "positive" : "non-negative"} integer`, { code: "bad_option" });
  }
  const fill = opts.fill ?? 0;
  const offsets = new Scratch(Int32Array);
  const self: Transform = {
    name,
    apply(x, rng, o = {}) {
      const d = imageDims(x, o, name, ["f32", "u8"]);
      checkFill(fill, x.dtype, name);
      if (oh > d.h + 2 * py || ow > d.w + 2 * px) {
        throw new KilnError(`${name}: crop ${oh}x${ow} is larger than the padded image ${d.h + 2 * py}x${d.w + 2 * px}`, { code: "input_shape" });
      }
      const off = offsets.get(2 * d.n);
      for (let s = 0; s < d.n; s++) {
        off[2 * s] = randomInt(rng, d.h + 2 * py - oh + 1) - py;
        off[2 * s + 1] = randomInt(rng, d.w + 2 * px - ow + 1) - px;
      }
      const out = output(self, x, x.dtype, [...x.shape.slice(0, -2), oh, ow], o);
      backendOf(opts).crop(x.data as Pixels, out.data as Pixels, d, oh, ow, off, fill);
      return out;
    },
  };
  return self;
}

/** (x - mean[c]) / std[c] per channel; mean/std of length 1 apply to every channel. f32 only. */
export function normalize(opts: { mean: number | readonly number[]; std: number | readonly number[] } & BackendOption): Transform {
  const name = "normalize";
  const mean = typeof opts.mean === "number" ? [opts.mean] : [...opts.mean];
  const std = typeof opts.std === "number" ? [opts.std] : [...opts.std];
  if (std.some((s) => !(Number.isFinite(s) && s !== 0)) || mean.some((m) => !Number.isFinite(m))) {
    throw new KilnError(`${name}: mean must be finite and std finite and non-zero (mean [${mean}], std [${std}])`, { code: "bad_option" });
  }
  const stats = new Scratch(Float64Array);
  const self: Transform = {
    name,
    apply(x, _rng, o = {}) {
      const d = imageDims(x, o, name, ["f32"]);
      const chans = channelCount(x, o);
      for (const [k, v] of [["mean", mean], ["std", std]] as const) {
        if (v.length !== 1 && v.length !== chans) {
          throw new KilnError(`${name}: ${k} has ${v.length} values but the image has ${chans} channels (shape [${x.shape.join(", ")}])`, { code: "input_shape", tensor: k });
        }
      }
      const st = stats.get(2 * chans);
      for (let ch = 0; ch < chans; ch++) {
        st[2 * ch] = mean[mean.length === 1 ? 0 : ch]!;
        st[2 * ch + 1] = std[std.length === 1 ? 0 : ch]!;
      }
      const out = output(self, x, "f32", x.shape, o);
      backendOf(opts).normalize(x.data as Float32Array, out.data as Float32Array, (d.n * d.c) / chans, chans, d.h * d.w, st);
      return out;
    },
  };
  return self;
}

/** u8 pixels -> f32 in [0, 1]. layout "HWC" ([H, W, C] samples) also moves channels first; "CHW" (default) keeps the shape. */
export function toTensor(opts: { layout?: "CHW" | "HWC" } & BackendOption = {}): Transform {
  const name = "toTensor";
  const layout = opts.layout ?? "CHW";
  const self: Transform = {
    name,
    apply(x, _rng, o = {}) {
      if (layout === "CHW") {
        const d = imageDims(x, o, name, ["u8"]);
        const out = output(self, x, "f32", x.shape, o);
        backendOf(opts).toTensor(x.data as Uint8Array, out.data as Float32Array, d, false);
        return out;
      }
      const b = o.batched ? 1 : 0;
      if (x.rank !== 3 + b) throw new KilnError(`${name}: layout HWC needs [${b ? "N, " : ""}H, W, C] but got shape [${x.shape.join(", ")}]`, { code: "input_shape" });
      checkDType(x, name, ["u8"]);
      const [h, w, c] = x.shape.slice(b) as [number, number, number];
      const n = b ? x.shape[0]! : 1;
      const out = output(self, x, "f32", [...x.shape.slice(0, b), c, h, w], o);
      backendOf(opts).toTensor(x.data as Uint8Array, out.data as Float32Array, { n, c, h, w }, true);
      return out;
    },
  };
  return self;
}

// ---- helpers ----

/** n samples of c planes of h x w: the last two axes are the image, axis 0 the sample when batched. */
function imageDims(x: Tensor, o: ApplyOptions, name: string, dtypes: DType[]): Dims {
  if (!(x instanceof Tensor)) throw new KilnError(`${name}: expected a Tensor`, { code: "input_dtype" });
  checkDType(x, name, dtypes);
  const minRank = o.batched ? 3 : 2;
  if (x.rank < minRank) {
    throw new KilnError(`${name}: needs ${o.batched ? "[N, C, H, W] or [N, H, W]" : "[C, H, W] or [H, W]"} but got shape [${x.shape.join(", ")}]`, { code: "input_shape" });
  }
  const h = x.shape[x.rank - 2]!;
  const w = x.shape[x.rank - 1]!;
  const n = o.batched ? x.shape[0]! : 1;
  const planes = x.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { n, c: n === 0 ? 0 : planes / n, h, w };
}

function channelCount(x: Tensor, o: ApplyOptions): number {
  return x.rank >= (o.batched ? 4 : 3) ? x.shape[x.rank - 3]! : 1;
}

function checkDType(x: Tensor, name: string, dtypes: DType[]): void {
  if (!dtypes.includes(x.dtype)) {
    const hint = dtypes.includes("u8") ? "" : " (apply toTensor() to u8 images first)";
    throw new KilnError(`${name}: expects ${dtypes.join(" or ")} images but got ${x.dtype}${hint}`, { code: "input_dtype", expected: dtypes.join("|"), actual: x.dtype });
  }
}

function checkFill(fill: number, dtype: DType, name: string): void {
  const ok = dtype === "u8" ? Number.isInteger(fill) && fill >= 0 && fill <= 255 : Number.isFinite(fill);
  if (!ok) throw new KilnError(`${name}: fill ${fill} is not a valid ${dtype} value`, { code: "bad_option" });
}

function output<D extends DType>(owner: object, x: Tensor, dtype: D, shape: readonly number[], o: ApplyOptions): Tensor<D> {
  return o.buffers ? o.buffers.get(owner, dtype, shape, x) : new Tensor(dtype, shape);
}

function backendOf(opts: BackendOption): AugmentBackend {
  return augmentBackend(opts.backend ?? "wasm");
}

// cos/sin of multiples of 90 degrees come out as ~1e-16 instead of 0; exact zeros make those rotations exact.
function snap(v: number): number {
  return Math.abs(v) < 1e-12 ? 0 : v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A per-transform parameter array, grown as needed and reused across calls (calls are synchronous). */
class Scratch<A extends Uint8Array | Int32Array | Float64Array> {
  #a: A;
  constructor(private readonly ctor: { new (n: number): A }) {
    this.#a = new ctor(0);
  }
  get(n: number): A {
    if (this.#a.length < n) this.#a = new this.ctor(Math.max(n, 2 * this.#a.length));
    return this.#a;
  }
}
