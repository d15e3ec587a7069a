// Codegen stage (wasm): assembles every kernel of a program into one WebAssembly module with Binaryen.
// The memory is imported (env.memory) so the runtime owns it; each kernel is exported under its name.
import { renderGather, renderScatterAdd } from "./gather.js";
import { renderDepthwise } from "./depthwise.js";
import { renderPool2d } from "./pool2d.js";
import { renderMaxPoolGrad } from "./pool-grad.js";
import { softmaxRowsBuffers, type KernelSpec, type NamedKernel } from "../kernel.js";
import type { Bin, E, Module } from "./context.js";
import { FnBuilder } from "./context.js";
import { MathHelpers } from "./math-helpers.js";
import { renderElementwise } from "./elementwise.js";
import { renderReduce } from "./reduce.js";
import { renderSoftmaxGradRows } from "./softmax-grad-rows.js";
import { renderSoftmaxRows } from "./softmax-rows.js";
import { renderMatmul } from "./matmul.js";
import { prepackName, WINOGRAD_PREPACK } from "../../../runtime/wasm/prepack.js";
import { renderCopy, renderIota } from "./copy.js";
import { renderQMatmul } from "./qmatmul.js";
import { flagParams, renderFinite } from "./finite.js";
import { qmatmulArgs } from "./qmatmul-layout.js";
import type { SimdVariant } from "./matmul-blocking.js";
import { parallelSection, sharesPackedB } from "./parallel.js";
import { COL_RANGE_GLOBALS, SHARED_B_GLOBAL } from "../../../runtime/wasm/threads-meta.js";
import { INTERNAL_FN_PREFIXES } from "./matmul-micro.js";

/** Larger than every math helper of math.ts in Binaryen's size measure (checked by test/codegen/helper-inlining.test.ts). */
const HELPER_INLINE_MAX = 2000;

export interface WasmBuildOptions {
  /** Run Binaryen's optimizer (default: off, so the text stays close to what the renderers wrote). */
  readonly optimize?: boolean;
  /** "relaxed" builds the same exports with f32x4.relaxed_madd in the matmul (default "plain" SIMD128). */
  readonly simd?: SimdVariant;
  /** Also render the WebAssembly text (default true; a build that only ships the binary skips it). */
  readonly text?: boolean;
}

export interface WasmBuildResult {
  /** ArrayBuffer-backed, so it is a BufferSource for WebAssembly.compile/instantiate as typed by TS 5.9. */
  readonly binary: Uint8Array<ArrayBuffer>;
  /** The module as WebAssembly text (for `kiln compile --emit wat`). */
  readonly text: string;
}

/** Number of i32 params of a kernel, per the calling convention in kernel.ts (a flag is one more pointer). */
export function kernelParamCount(spec: KernelSpec): number {
  switch (spec.kind) {
    case "elementwise": return spec.inputs.length + 1 + (spec.extraOutputs?.length ?? 0) + flagParams(spec) + spec.rank;
    case "reduce": return (spec.prologue?.inputs.length ?? 1) + 1 + (spec.prologue?.stored ? 1 : 0) + flagParams(spec) + spec.rank;
    case "matmul": return 4 + (spec.epilogue?.inputs.length ?? 0) + flagParams(spec) + spec.batchRank + 5;
    case "copy": return 4 + 3 * spec.rank;
    case "iota": return 2;
    case "gather": case "scatter_add": return 6;
    case "depthwise_conv2d": return 5;
    case "qmatmul": return qmatmulArgs(spec).count;
    case "finite": return 3;
    case "softmax_rows": return softmaxRowsBuffers(spec).length + 3;
    case "pool2d": return (spec.prologue?.inputs.length ?? 1) + 3;
    case "maxpool_grad": return 5;
    case "softmax_grad_rows": return spec.inputs.length + 4;
  }
}

function renderBody(fb: FnBuilder, spec: KernelSpec, simd: SimdVariant): E {
  switch (spec.kind) {
    case "elementwise": return renderElementwise(fb, spec);
    case "reduce": return renderReduce(fb, spec);
    case "matmul": return renderMatmul(fb, spec, simd);
    case "copy": return renderCopy(fb, spec);
    case "iota": return renderIota(fb);
    case "gather": return renderGather(fb, spec);
    case "scatter_add": return renderScatterAdd(fb, spec);
    case "depthwise_conv2d": return renderDepthwise(fb, spec);
    case "qmatmul": return renderQMatmul(fb, spec);
    case "finite": return renderFinite(fb, spec);
    case "softmax_rows": return renderSoftmaxRows(fb, spec, simd);
    case "pool2d": return renderPool2d(fb, spec);
    case "maxpool_grad": return renderMaxPoolGrad(fb, spec);
    case "softmax_grad_rows": return renderSoftmaxGradRows(fb, spec);
  }
}

function setUp(binaryen: Bin, m: Module, simd: SimdVariant): MathHelpers {
  const F = binaryen.Features;
  const relaxed = simd === "relaxed" ? F.RelaxedSIMD : 0;
  m.setFeatures(F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt | F.NontrappingFPToInt | F.SignExt | F.MutableGlobals | relaxed);
  // No declared maximum: an import with one would reject a runtime memory created without a maximum.
  m.setMemory(1, -1, null, [], false, false, "0");
  m.addMemoryImport("0", "env", "memory");
  // Re-exported so the optimiser keeps the import even in a module without kernels (e.g. only reshapes).
  m.addMemoryExport("0", "memory");
  return new MathHelpers(binaryen, m, simd);
}

function addKernel(binaryen: Bin, m: Module, helpers: MathHelpers, k: NamedKernel, simd: SimdVariant): void {
  const params = new Array<number>(kernelParamCount(k.spec)).fill(binaryen.i32);
  const fb = new FnBuilder(binaryen, m, params, helpers);
  let body: E;
  try {
    body = renderBody(fb, k.spec, simd);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg} (kernel "${k.name}")`, { cause: e });
  }
  m.addFunction(k.name, binaryen.createType(params), binaryen.none, fb.vars, body);
}

/** Rebuilds each kernel alone to name the one that does not validate (only on the error path). */
function findInvalid(binaryen: Bin, kernels: readonly NamedKernel[], simd: SimdVariant): string | undefined {
  for (const k of kernels) {
    const m = new binaryen.Module();
    try {
      addKernel(binaryen, m, setUp(binaryen, m, simd), k, simd);
      if (!m.validate()) return k.name;
    } finally {
      m.dispose();
    }
  }
  return undefined;
}

export async function buildWasmModule(kernels: readonly NamedKernel[], opts: WasmBuildOptions = {}): Promise<WasmBuildResult> {
  const binaryen = (await import("binaryen")).default;
  const names = new Set<string>();
  for (const k of kernels) {
    if (k.name.length === 0 || k.name.startsWith("__kiln_")) throw new Error(`wasm backend: invalid kernel name "${k.name}"`);
    if (names.has(k.name)) throw new Error(`wasm backend: duplicate kernel name "${k.name}"`);
    names.add(k.name);
  }
  const simd = opts.simd ?? "plain";
  const m = new binaryen.Module();
  try {
    const helpers = setUp(binaryen, m, simd);
    for (const k of kernels) {
      addKernel(binaryen, m, helpers, k, simd);
      m.addFunctionExport(k.name, k.name);
    }
    // The B packers of prepacked matmuls (wasm/matmul.ts prepackB), which the runtime calls when a weight changes.
    // Also those of matmuls whose B the thread pool packs once per call for all threads (parallel.ts sharesPackedB),
    // with the global the gemm reads that packed B's address from.
    const packers = new Set(kernels.flatMap((k) => (k.spec.kind === "matmul" && (k.spec.prepackedB || sharesPackedB(k.spec)) ? [prepackName(k.spec.transB === true)] : [])));
    if (kernels.some((k) => k.spec.kind === "matmul" && k.spec.winograd?.prepacked)) packers.add(WINOGRAD_PREPACK);
    for (const name of packers) m.addFunctionExport(name, name);
    // (Batched gemms read the global too, as the gemm is shared, but the pool sets it only for sharing kernels.)
    if (kernels.some((k) => k.spec.kind === "matmul" && sharesPackedB(k.spec))) m.addGlobalExport(SHARED_B_GLOBAL, SHARED_B_GLOBAL);
    // The column range of a column chunk (matmul.ts columnGlobals), present wherever a gemm reads it.
    for (const g of COL_RANGE_GLOBALS) if (m.getGlobal(g)) m.addGlobalExport(g, g);
    const par = parallelSection(kernels, simd);
    if (par) m.addCustomSection(par.name, par.contents);
    if (!m.validate()) {
      const bad = findInvalid(binaryen, kernels, simd);
      throw new Error(`wasm backend: generated module does not validate${bad ? ` (kernel "${bad}")` : ""} — compiler bug`);
    }
    if (opts.optimize) {
      // Every math helper call is inlined into its kernel (kernels are never called):
      // Binaryen's defaults inline a helper only where it has one caller, so a program whose exp serves two kernels
      // paid a call per vector in each (about a third of a softmax row's exp pass). A global setting: restored.
      // The matmul's internal functions stay calls (inlined, the relaxed build's matmuls ran 2x slower).
      for (const prefix of INTERNAL_FN_PREFIXES) {
        binaryen.setPassArgument("no-inline", `${prefix}*`);
        m.runPasses(["no-inline"]);
      }
      binaryen.setPassArgument("no-inline", null);
      const always = binaryen.getAlwaysInlineMaxSize();
      binaryen.setAlwaysInlineMaxSize(HELPER_INLINE_MAX);
      try {
        m.optimize();
      } finally {
        binaryen.setAlwaysInlineMaxSize(always);
      }
    }
    return { binary: new Uint8Array(m.emitBinary()), text: opts.text === false ? "" : m.emitText() };
  } finally {
    m.dispose();
  }
}
