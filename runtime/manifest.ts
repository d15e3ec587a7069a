// Runtime contract: the JSON manifest `kiln compile` writes next to the .wasm, and that the runtime executes.
// It lists the wasm kernels, the params with their init rules, and for each function a plan: the buffers
// (values) it uses and the kernel calls (steps) in order. The compiler imports these types; the runtime never
// imports the compiler.

import { evalDimExpr, isDerivedDim } from "./dim-expr.js";

export type ManifestDType = "f32" | "f16" | "bf16" | "f64" | "i32" | "i8" | "u8" | "bool";
export type ManifestDim = number | string;

/**
 * An integer expression over symbolic dims: a sum of monomials, each [coefficient, ...symbols] meaning
 * coefficient * product(symbols). `[[784, "B"]]` is 784*B; `[[3]]` is 3; `[]` is 0.
 */
export type DimPoly = Array<[number, ...string[]]>;

export type InitSpec =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "normal"; mean: number; std: number }
  | { kind: "uniform"; low: number; high: number }
  /** He/Kaiming normal: std = sqrt(2 / fanIn). */
  | { kind: "he"; fanIn: number }
  /** Xavier/Glorot uniform: limit = sqrt(6 / (fanIn + fanOut)). */
  | { kind: "xavier"; fanIn: number; fanOut: number }
  /**
   * A mixed-precision copy (role "copy"): the values of the master param `of` (listed earlier), converted to
   * this param's f16/bf16 dtype by the caller's encoder; draws nothing from the RNG.
   */
  | { kind: "copy"; of: string };

export interface ParamManifest {
  /** Qualified name, "Model.param". */
  name: string;
  model: string;
  /**
   * "state" for optimizer state (momentum, Adam moments, step count) that a train block owns. "copy" for the
   * f16/bf16 copy of the f32 master weight `copyOf` that mixed-precision matmuls read: the runtime derives it
   * from the master whenever that is initialised, loaded or set, training steps update it, and it is never
   * initialised from `init`, saved or set on its own.
   */
  role?: "weight" | "state" | "copy";
  copyOf?: string;
  dtype: ManifestDType;
  shape: number[];
  init: InitSpec;
}

export interface TensorSig {
  name: string;
  dtype: ManifestDType;
  shape: ManifestDim[];
  /** i32 indices (take, embedding, gather): every value must be in [0, bound); checked on the way in. */
  bound?: number;
  /**
   * An f32 input stored in 16 bits (mixed precision: only matmuls read it, and they round it anyway): the caller
   * still passes f32 (`dtype`); the runtime rounds it to this format while copying it in, and the input's value
   * has this dtype.
   */
  storage?: "f16" | "bf16";
  /**
   * Class labels (an i32 input that one_hot or cross_entropy reads directly): every element must lie in
   * [0, classes), or the call is a KilnError naming the input, the index and the value.
   */
  classes?: number;
  /** With `classes`: a label value exempt from the range check (cross_entropy's `ignore_index` at every use). */
  ignoreIndex?: number;
  /**
   * With `storage`: the kernel that converts an f32 tensor already on the GPU into that storage, an elementwise
   * kernel of rank 1 (in, out, n) (WebGPU: a GpuTensor passed for this input is converted there, not on the host).
   */
  convert?: string;
}

/** Where a value's buffer comes from. */
export type ValueSource =
  | { kind: "input"; index: number }
  | { kind: "param"; name: string }
  /** A scalar or splatted constant, filled once at load time. */
  | { kind: "const"; value: number }
  /**
   * f32 values uniform in [0, 1), drawn before each call from the seeded stream `stream` of this function
   * (runtime/random.ts): fresh values every call, the same sequence for the same load seed.
   */
  | { kind: "random"; stream: number }
  /** A scalar: the product of `dims` as bound by the call, written before each call (a mean's element count). */
  | { kind: "dim"; dims: ManifestDim[] }
  /**
   * Written by kernel steps during the call. `matmul`: a matmul step's packing scratch, whose bytes are computed
   * per call from the gemm's dims (runtime/wasm/matmul-scratch.ts); its `shape` is a compile-time upper bound.
   */
  | { kind: "temp"; matmul?: MatmulScratchSpec }
  /** Same bytes as another value (reshape of a contiguous tensor). */
  | { kind: "alias"; of: number }
  /** Computed inside another value's fused kernel and never stored: no buffer. */
  | { kind: "fused" };

export interface ValueManifest {
  dtype: ManifestDType;
  shape: ManifestDim[];
  source: ValueSource;
}

/**
 * Step "kernels" the runtime runs itself instead of calling the wasm: `@all_reduce` (buffers [x, out], ints [numel])
 * copies f32 x to out and sums out over the data-parallel replicas through the executor's collective hook (the
 * identity without one). Only a data-parallel grad function has host steps; WebGPU refuses such functions.
 */
export const HOST_ALL_REDUCE = "@all_reduce";
/**
 * `@bucket` (buffers [grads], ints [b], outputs 0): bucket b of a data-parallel grad's gradient vector is final;
 * the executor hands it to the collective hook (Collective.bucketReady), which starts reducing it while the rest
 * of backward runs (compiler/codegen/plan-buckets.ts places these steps). Without a hook, nothing.
 */
export const HOST_BUCKET = "@bucket";

export function isHostStep(st: Pick<StepManifest, "kernel">): boolean {
  return st.kernel.startsWith("@");
}

export interface StepManifest {
  /** Export name of the wasm kernel, or a host step's name (HOST_ALL_REDUCE). */
  kernel: string;
  /** Value indices passed as byte pointers, in the kernel's argument order (inputs, then output). */
  buffers: number[];
  /**
   * How many of the last `buffers` the step writes (default 1): a multi-output elementwise kernel stores its
   * extra outputs after `out` (compiler/codegen/kernel.ts). Such steps are never guarded.
   */
  outputs?: number;
  /** Integer arguments after the pointers, evaluated with the call's dim bindings. */
  ints: DimPoly[];
  /** IR ops this step computes, for error messages and profiles. */
  ops: string[];
  /**
   * Run the step only if every listed bool scalar value equals `when` (a branch taken, a loop iteration that
   * runs); otherwise its output buffer is filled with zeros.
   */
  guard?: { value: number; when: boolean }[];
  /**
   * Positions (in `buffers`) of inputs whose layout equals the output's, so the output may be written over
   * them when they die at this step (elementwise kernels read each element before writing it).
   */
  inplace?: number[];
  /** Which of the step's outputs `inplace` is about (default 0, `out`; a reduce that also stores its prologue: 1). */
  inplaceOut?: number;
  /**
   * wasm, a matmul whose B (buffer 1) is a param [K, N] (or [N, K] with `trans`) in a function that updates no
   * param: the kernel reads B packed into panels by the exported `kernel` (b, packed, K, N), which the runtime
   * runs once per value of the param and keeps (runtime/wasm/prepack.ts); other backends ignore this.
   */
  prepackB?: {
    kernel: string;
    K: number;
    N: number;
    /**
     * "winograd": the param is a 3x3 convolution's weight [N = O, K = 9 C] (the step's ints 1 and 2 are O and 9 C) and
     * `kernel` writes its Winograd transform, 16 x roundUp(O, 4) x C floats (compiler/codegen/wasm/winograd.ts).
     */
    layout?: "winograd";
  };
}

/** `dim` (a symbol or derived dim) must be at most `max`; `what` names the slice that needs it, for the error. */
export interface DimLimit {
  dim: string;
  max: number;
  what: string;
}

export interface FunctionManifest {
  /** Qualified name: "Model.method" or "fn". */
  name: string;
  /** Name on the loaded module object (method name for model methods). */
  jsName: string;
  model?: string;
  /** Symbolic dims of the signature, bound from the inputs at call time. */
  dims: string[];
  inputs: TensorSig[];
  outputs: TensorSig[];
  /** Value index of each output, parallel to `outputs`. */
  outputValues: number[];
  values: ValueManifest[];
  steps: StepManifest[];
  /**
   * Params the call updates (a training step: weights and optimizer state): after the steps, each listed
   * value is copied into the param's buffer. Outputs are read before the updates.
   */
  updates?: { param: string; value: number }[];
  /**
   * Run-time bounds of `for` loops whose trip count is an i32 value: after the steps, the call fails with a
   * KilnError (code "loop_bound") naming `loop` when value (the trip count where it exceeds max, else 0) > max.
   */
  checks?: { value: number; loop: string; max: number }[];
  /**
   * Upper bounds on dims, checked when the call's dims are bound: a known axis sliced to a symbolic end (a
   * position table cut to the sequence length) reads past the axis when the dim exceeds it (compiler/ir/dim-limits.ts).
   */
  limits?: DimLimit[];
  /**
   * Int8 versions of the matmuls whose weight is a param, for runtime/quantize/dynamic.ts (absent: none eligible, a
   * training step, or an older compiler). See docs/quantization.md.
   */
  int8?: Int8StepManifest[];
  /** A train block's data-parallel half (`Name.grad` or `Name.apply`, compiled with dataParallel): runtime/parallel/. */
  parallel?: DataParallelLayout;
}

/**
 * The flat gradient vector that `Name.grad` returns and `Name.apply` takes: every trained param's gradient in
 * reverse declaration order (the order backward finishes them), cut into buckets at tensor boundaries. Replicas
 * all-reduce it bucket by bucket (runtime/parallel/allreduce.ts).
 */
export interface DataParallelLayout {
  role: "grad" | "apply";
  /** The train block ("Train"). */
  train: string;
  /** Elements in the vector. */
  total: number;
  gradients: { param: string; offset: number; numel: number }[];
  /** Contiguous element ranges, in vector order. */
  buckets: { offset: number; numel: number }[];
  /** grad's last input, f32[]: the replica's share of the global batch, which weights its loss. */
  share?: string;
}

/**
 * Byte layout of a quantized weight W[n][k] (n the output channel) in a backend's memory: columns in panels of
 * `nr`, k in groups of `group`, each element `elem`; (n, k) sits at element ((floor(n / nr) * G + floor(k /
 * group)) * nr + n % nr) * group + k % group with G = ceil(K / group); padding is zero.
 */
export interface QPacking {
  nr: number;
  group: number;
  elem: "i8" | "i16";
}

/**
 * Word offsets in an int8 step's `qp` buffer (f32 words): [input scale, input zero point, output scale, output
 * zero point], then the N per-channel weight scales, then the N column sums of the int8 weight (integers, used by
 * the WGSL kernels), each block zero-padded to a multiple of 16 words so vector reads past N stay inside.
 */
export function qpLayout(n: number): { scales: number; colsums: number; words: number } {
  const pad = Math.ceil(n / 16) * 16;
  return { scales: 4, colsums: 4 + pad, words: 4 + 2 * pad };
}

/** One matmul on a param weight (plus its bias add and ReLU when the plan fuses them) as an int8 kernel call. */
export interface Int8StepManifest {
  /** Indices in `steps` this call replaces: the matmul, then the elementwise step applying bias/ReLU if fused. */
  replaces: number[];
  /** The weight param: [K, N], or [N, K] when `transposed` (the matmul read it transposed). */
  weight: string;
  transposed: boolean;
  /** Value indices: the activation [M, K] (f32), the fused bias [N] (a param), the output [M, N], the scratch. */
  input: number;
  bias?: number;
  output: number;
  scratch: number;
  relu: boolean;
  /** M, K, N, m0, m1. */
  ints: DimPoly[];
  /** Kernel for dynamic quantization (f32 in, f32 out). */
  dynamic: string;
  /** Kernel for static quantization; its input is u8 when `staticIn` is "q8" (the previous int8 step's output). */
  static: string;
  staticIn: "f32" | "q8";
  staticOut: "f32" | "q8";
  /** How each backend's kernels expect the quantized weight packed. */
  packing: { wasm: QPacking; wgsl: QPacking };
  ops: string[];
  guard?: { value: number; when: boolean }[];
}

/** Workgroups along one grid axis: ceil(product(ints[i] for i in `ints`) / per); 1 when `ints` is empty. */
export interface WgslGridAxis {
  ints: number[];
  per: number;
}

/** What the WebGPU runtime needs to know about one kernel besides its WGSL text. */
export interface WgslKernelManifest {
  /**
   * How the kernel uses each of a step's buffers, in order: bound at bindings 1, 2, ... as read-only or
   * read-write storage; "none" (not bound, e.g. the wasm matmul's packing scratch); or "pack": copied by the
   * runtime into one read-only buffer bound where the first "pack" is, at word offsets it appends to the uniform
   * block after the step's ints (kernels with more inputs than a compatibility device may bind).
   */
  buffers: Array<"read" | "write" | "none" | "pack">;
  /** u32 fields of the uniform block at binding 0 (a step's ints, in order). */
  ints: number;
  /** Invocations per workgroup and workgroup storage bytes, checked against the device limits at load. */
  workgroupSize: number;
  workgroupBytes: number;
  /** Workgroups to dispatch along x, y, z; each is clamped to the device limit and the shader loops over the rest. */
  grid: [WgslGridAxis, WgslGridAxis, WgslGridAxis];
  /**
   * The kernel reads or writes f16 data: besides its section (f16 packed two per u32 word, any adapter) the file
   * has a `NAME__f16` section (WGSL_F16_SUFFIX) binding f16 buffers as array<f16> with `enable f16;`, which the
   * runtime compiles instead on a device with shader-f16. Same bindings, grid and memory layout.
   */
  f16?: true;
}

/** Suffix of a kernel's native-f16 section in the .wgsl file (see WgslKernelManifest.f16). */
export const WGSL_F16_SUFFIX = "__f16";

/**
 * Suffix of a qmatmul kernel's second section in the .wgsl file, rendered with dot4I8Packed: the WebGPU runtime
 * compiles it instead where the adapter has the packed_4x8_integer_dot_product language feature. It shares the
 * base kernel's `WgslKernelManifest` (same bindings and grid) and has no entry of its own.
 */
export const WGSL_DOT4_SUFFIX = "__dot4";

/** The WGSL target: every kernel's shader in one text file, each starting at a `// @kiln-kernel NAME` line. */
export interface WgslManifest {
  file: string;
  kernels: Record<string, WgslKernelManifest>;
}

export interface Manifest {
  format: "kiln-module";
  version: 1;
  compiler: string;
  source: string;
  /** The wasm kernels file; "" when the module was compiled for WebGPU only (--target wgsl). */
  wasm: string;
  /** The same kernels with relaxed SIMD (f32x4.relaxed_madd), loaded instead of `wasm` where the engine has it. */
wasmRelaxed?: string;
  /** Digests of this manifest and of the kernel files, written by the module writer and checked at load. */
  integrity?: Integrity;
  kernels: string[];
  params: ParamManifest[];
  functions: FunctionManifest[];
  /** Present when compiled with --target wgsl or all. */
  wgsl?: WgslManifest;
}

export function evalDimPoly(p: DimPoly, bind: Record<string, number>): number {
  let total = 0;
  for (const [c, ...syms] of p) {
    let term = c;
    for (const s of syms) {
      // A derived dim ("B*T", "T-1") is computed from its symbols when the call's binding has not named it.
      const v = bind[s] ?? (isDerivedDim(s) ? evalDimExpr(s, bind) : undefined);
      if (v === undefined || Number.isNaN(v)) throw new Error(`dimension ${s} is not bound`);
      term *= v;
    }
    total += term;
  }
  return total;
}

/** How a matmul step's packing scratch is sized from the call's dims (runtime/wasm/matmul-scratch.ts computes it). */
export interface MatmulScratchSpec {
  M: DimPoly;
  K: DimPoly;
  N: DimPoly;
  /** "auto": the kernel picks the band when the call's K is one block (K <= KC), else the block. */
  partial?: "block" | "band" | "auto";
  minBytes?: number;
}

/** Digests of the manifest and of each kernel file, written at compile time and checked at load (runtime/integrity.ts). */
export interface Integrity {
  /** Digest of the manifest's JSON without this field. */
  manifest: string;
  wasm?: string;
  wasmRelaxed?: string;
  wgsl?: string;
}
