// The compiler driver: source text -> parse -> lower (type/shape checks) -> pass pipeline -> plan -> wasm and/or
// WGSL, with every stage's diagnostics collected. Used by the CLI and by tests; writes no files (see compiler/emit/).

import { DiagnosticBag, type Diagnostic } from "./diagnostics.js";
import { parseProgram } from "./frontend/kiln/parse.js";
import type { IRModule } from "./ir/graph.js";
import { printModule } from "./ir/print.js";
import { lowerProgram } from "./lower/lower-module.js";
import { runPipeline } from "./passes/pipeline.js";
import { planModule, type Plan } from "./codegen/plan.js";
import type { Manifest } from "../runtime/manifest.js";
import { COMPILER_VERSION } from "./version.js";
import { REDUCE_OPS } from "./ops/types.js";
import { buildWgslModule, type WgslBuildOptions } from "./codegen/wgsl/module.js";
import { withBaselineWasm } from "./wasm-tiering.js";

export interface FrontendResult {
  readonly diagnostics: Diagnostic[];
  /** The optimised IR (after the whole pipeline), when there were no errors. */
  readonly ir?: IRModule;
  /** IR text after each requested dump point. */
  readonly dumps: { pass: string; text: string }[];
}

import type { Precision, Target } from "./options.js";
export { PRECISIONS, type Precision, type Target } from "./options.js";

export interface CompileOptions {
  readonly precision?: Precision;
  /** Also compile each train block as `Name.grad` + `Name.apply` for data-parallel replicas (runtime/parallel/). */
  readonly dataParallel?: boolean;
}

/** Parse, lower and optimise. Never throws for a bad program: errors come back as diagnostics. */
export function compileToIR(source: string, file: string, dumpAfter: readonly string[] = [], skipPasses: readonly string[] = [], opts: CompileOptions = {}): FrontendResult {
  const parsed = parseProgram(source, file);
  const diags = new DiagnosticBag();
  diags.items.push(...parsed.diagnostics);
  if (diags.hasErrors) return { diagnostics: diags.sorted(), dumps: [] };
  const precision = opts.precision === "mixed-f16" ? "f16" : opts.precision === "mixed-bf16" ? "bf16" : undefined;
  const lowered = lowerProgram(parsed.program, diags, { precision, ...(opts.dataParallel ? { dataParallel: true } : {}) });
  if (!lowered) return { diagnostics: diags.sorted(), dumps: [] };
  const dumps: { pass: string; text: string }[] = [];
  const ir = runPipeline(lowered, diags, (pass, m) => {
    if (dumpAfter.includes(pass)) dumps.push({ pass, text: printModule(m) });
  }, skipPasses);
  return { diagnostics: diags.sorted(), ir, dumps };
}

/**
 * What the wasm backend cannot run, reported at the expression that produced it: f64 tensors, and reductions
 * over f16/bf16 values (f16/bf16 are storage formats elementwise, matmul and copy kernels convert; a reduction
 * reads them through `cast(x, f32)`, which the precision pass inserts under --precision mixed-*).
 */
export function checkWasmDtypes(ir: IRModule, diags: DiagnosticBag): void {
  const reported = new Set<string>();
  for (const g of ir.functions) {
    for (const n of g.nodes) {
      const dt = n.type.dtype;
      const halfReduce = (dt === "f16" || dt === "bf16") && (REDUCE_OPS as readonly string[]).includes(n.op);
      if (dt !== "f64" && !halfReduce) continue;
      const key = `${dt}@${n.span?.line}:${n.span?.col}`;
      if (reported.has(key) || !n.span) continue;
      reported.add(key);
      if (halfReduce) {
        diags.error("K502", `the wasm backend does not reduce ${dt} values yet (${n.op} in ${g.name})`, n.span, `reduce in f32: ${n.op}(cast(x, f32)), or compile with --precision mixed-${dt}`);
      } else diags.error("K502", `the wasm backend does not support ${dt} tensors yet (in ${g.name})`, n.span, "f64 runs only in the reference interpreter: kiln run --backend reference");
    }
  }
}

export interface WasmBuild {
  readonly plan: Plan;
  readonly manifest: Manifest;
  readonly wasm: Uint8Array;
  /** The same kernels built with relaxed SIMD (f32x4.relaxed_madd); the runtime picks it when the engine can. */
  readonly wasmRelaxed: Uint8Array;
  readonly wat: string;
}

export interface TargetBuild {
  readonly plan: Plan;
  /** With `wgsl` set when the WGSL target is built, and `wasm: ""` when the wasm one is not. */
  readonly manifest: Manifest;
  /** The wasm kernels and their text (absent for target "wgsl"). */
  readonly wasm?: Uint8Array;
  readonly wat?: string;
  /** All WGSL shaders in one text (absent for target "wasm"). */
  readonly wgsl?: string;
}

/** Adds the WGSL target to a planned build: the shaders' text and the manifest's `wgsl` field. */
export function withWgsl(manifest: Manifest, plan: Plan, baseName: string, opts: WgslBuildOptions = {}): { manifest: Manifest; wgsl: string } {
  const { text, kernels } = buildWgslModule(plan.kernels, opts);
  return { manifest: { ...manifest, wgsl: { file: `${baseName}.wgsl`, kernels } }, wgsl: text };
}

/**
 * Builds the requested targets from one plan. Target "wgsl" never loads Binaryen (the manifest says `wasm: ""`).
 */
export async function buildTargets(ir: IRModule, baseName: string, target: Target, wgslOpts: WgslBuildOptions = {}): Promise<TargetBuild> {
  if (target === "wgsl") return buildWgsl(ir, baseName, wgslOpts);
  const w = await buildWasm(ir, baseName);
  if (target === "wasm") return { plan: w.plan, manifest: w.manifest, wasm: w.wasm, wat: w.wat };
  const g = withWgsl(w.manifest, w.plan, baseName, wgslOpts);
  return { plan: w.plan, manifest: g.manifest, wasm: w.wasm, wat: w.wat, wgsl: g.wgsl };
}

/** The WGSL target alone: plans and renders the shaders without building wasm. */
export function buildWgsl(ir: IRModule, baseName: string, opts: WgslBuildOptions = {}): { plan: Plan; manifest: Manifest; wgsl: string } {
  const plan = planModule(ir);
  return { plan, ...withWgsl(planManifest(ir, plan, ""), plan, baseName, opts) };
}

/** The manifest of a planned module; `wasmFile` names the kernels binary ("" when there is none). */
function planManifest(ir: IRModule, plan: Plan, wasmFile: string): Manifest {
  return {
    format: "kiln-module",
    version: 1,
    compiler: COMPILER_VERSION,
    source: ir.source,
    wasm: wasmFile,
    kernels: plan.kernels.map((k) => k.name),
    params: ir.params.map((p) => ({ name: p.name, model: p.model, dtype: p.type.dtype, shape: p.type.shape as number[], init: p.init, ...(p.role ? { role: p.role } : {}), ...(p.copyOf ? { copyOf: p.copyOf } : {}) })),
    functions: plan.functions,
  };
}

/** Plans kernels and builds the wasm module for an optimised IR module; `wat: false` skips the text (`wat` is ""). */
export async function buildWasm(ir: IRModule, baseName: string, opts: { wat?: boolean } = {}): Promise<WasmBuild> {
  const plan = planModule(ir);
  const { buildWasmModule } = await import("./codegen/wasm/module.js");
  const { binary, text, relaxed } = await withBaselineWasm(async () => ({
    ...(await buildWasmModule(plan.kernels, { optimize: true, text: opts.wat !== false })),
    relaxed: await buildWasmModule(plan.kernels, { optimize: true, simd: "relaxed", text: false }),
  }));
  const manifest = { ...planManifest(ir, plan, `${baseName}.wasm`), wasmRelaxed: `${baseName}.relaxed.wasm` };
  return { plan, manifest, wasm: binary, wasmRelaxed: relaxed.binary, wat: text };
}
