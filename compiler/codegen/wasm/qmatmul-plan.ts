// Codegen stage (planner side, backend-neutral despite its folder): finds the matmuls of a planned function whose
// weight is a param and records their int8 variants in the manifest (FunctionManifest.int8), with the bias add
// and ReLU of the following elementwise step fused in when nothing else reads the matmul's result.
import { isHostStep, type FunctionManifest, type Int8StepManifest, type StepManifest } from "../../../runtime/manifest.js";
import type { EwExpr, KernelSpec, QMatmulKernel } from "../kernel.js";
import { WGSL_QPACKING } from "../wgsl/qmatmul.js";
import { WASM_QPACKING, qmatmulScratchBytes } from "./qmatmul-layout.js";

type Intern = (spec: KernelSpec, label: string) => string;

/** Steps reading each value (inputs and guards), and values that something other than a step reads. */
function readers(fm: FunctionManifest): { steps: Map<number, number[]>; pinned: Set<number> } {
  const steps = new Map<number, number[]>();
  const pinned = new Set<number>([...fm.outputValues, ...(fm.updates ?? []).map((u) => u.value)]);
  const add = (v: number, s: number) => steps.set(v, [...(steps.get(v) ?? []), s]);
  fm.steps.forEach((st, s) => {
    st.buffers.slice(0, -1).forEach((b) => add(b, s));
    st.guard?.forEach((g) => pinned.add(g.value));
  });
  fm.values.forEach((v) => v.source.kind === "alias" && pinned.add(v.source.of));
  return { steps, pinned };
}

const sameGuard = (a: StepManifest, b: StepManifest) => JSON.stringify(a.guard ?? []) === JSON.stringify(b.guard ?? []);

/** bias + x or relu(bias + x) with x = input `xi` of the step; returns the bias input index and relu. */
function biasRelu(e: EwExpr, xi: number): { bias: number; relu: boolean } | null {
  let relu = false;
  if (e.t === "op" && e.op === "relu") {
    relu = true;
    e = e.args[0]!;
  }
  if (e.t !== "op" || e.op !== "add" || e.args.length !== 2) return null;
  const [p, q] = e.args as [EwExpr, EwExpr];
  if (p.t !== "in" || q.t !== "in") return null;
  if (p.index === xi && q.index !== xi) return { bias: q.index, relu };
  if (q.index === xi && p.index !== xi) return { bias: p.index, relu };
  return null;
}

interface Candidate {
  step: number;
  v: Omit<Int8StepManifest, "dynamic" | "static" | "staticIn" | "staticOut">;
  K: number;
}

function candidate(fm: FunctionManifest, s: number, specOf: (k: string) => KernelSpec, rd: ReturnType<typeof readers>): Candidate | null {
  const st = fm.steps[s]!;
  if (isHostStep(st)) return null;
  const spec = specOf(st.kernel);
  // A matmul that clears an all_finite flag keeps its f32 kernel (the int8 kernels have no flag).
  // A convolution gather (kernel.ts aConv) reads x, not a row-major A: it keeps its f32 kernel too.
  if (spec.kind !== "matmul" || spec.dtype !== "f32" || spec.batchRank !== 0 || spec.transA || spec.flag || spec.aConv) return null;
  const [input, weight, scratch] = st.buffers as [number, number, number];
  const out = st.buffers.at(-1)!;
  // A matmul with an epilogue (passes/fusion.ts) has an int8 variant only when the epilogue is bias (+ relu).
  const epi = spec.epilogue ? biasRelu(spec.epilogue.expr, 0) : undefined;
  if (spec.epilogue && (!epi || spec.epilogue.inputs.length !== 1 || spec.epilogue.out !== "f32")) return null;
  const wv = fm.values[weight]!;
  if (wv.source.kind !== "param" || wv.shape.length !== 2 || !wv.shape.every((d) => typeof d === "number" && d > 0)) return null;
  const transposed = spec.transB === true;
  const [K, N] = (transposed ? [wv.shape[1], wv.shape[0]] : wv.shape) as [number, number];
  // |q - zero point| <= 255 and |w| <= 127: int32 sums cannot overflow below K = 2^31 / 32385.
  if (K > 65535) return null;
  const base = { replaces: [s], weight: wv.source.name, transposed, input, output: out, scratch, relu: false, ints: st.ints, ops: [...st.ops], packing: { wasm: WASM_QPACKING, wgsl: WGSL_QPACKING }, ...(st.guard ? { guard: st.guard } : {}) };
  if (epi) {
    const bias = fm.values[st.buffers[3]!]!;
    const numel = bias.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : NaN), 1);
    if (bias.source.kind !== "param" || bias.dtype !== "f32" || numel !== N || !spec.epilogue!.inputs[0]!.bcast[0]) return null;
    return { step: s, v: { ...base, bias: st.buffers[3]!, relu: epi.relu }, K };
  }
  // Fuse the consumer step when it is exactly bias add (+ relu) over this output, under the same guards.
  const users = rd.steps.get(out) ?? [];
  if (users.length !== 1 || rd.pinned.has(out)) return { step: s, v: base, K };
  const e = fm.steps[users[0]!]!;
  if (isHostStep(e)) return { step: s, v: base, K };
  const es = specOf(e.kernel);
  if (es.kind !== "elementwise" || es.out !== "f32" || e.buffers.length !== 3 || !sameGuard(st, e)) return { step: s, v: base, K };
  const xi = e.buffers.indexOf(out);
  const br = xi >= 0 && !es.inputs[xi]!.bcast.some(Boolean) ? biasRelu(es.expr, xi) : null;
  const bias = br ? fm.values[e.buffers[br.bias]!]! : undefined;
  const numel = bias?.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : NaN), 1);
  if (!br || bias!.source.kind !== "param" || bias!.dtype !== "f32" || numel !== N) return { step: s, v: base, K };
  return {
    step: s,
    v: { ...base, replaces: [s, users[0]!], bias: e.buffers[br.bias]!, output: e.buffers[2]!, relu: br.relu, ops: [...st.ops, ...e.ops] },
    K,
  };
}

/**
 * Adds `fm.int8` (and grows the function's matmul scratch to what the int8 kernels need). Static variants chain:
 * an int8 step whose output only feeds the next one's activation leaves it as u8 for it.
 */
export function addInt8Variants(fm: FunctionManifest, specOf: (kernel: string) => KernelSpec, intern: Intern): void {
  const rd = readers(fm);
  const cands = fm.steps.flatMap((_, s) => candidate(fm, s, specOf, rd) ?? []);
  if (cands.length === 0) return;
  const byInput = new Map(cands.map((c) => [c.v.input, c]));
  const chainedOut = new Set<Candidate>();
  const chainedIn = new Set<Candidate>();
  for (const c of cands) {
    const next = byInput.get(c.v.output);
    const users = rd.steps.get(c.v.output) ?? [];
    if (next && next !== c && !c.v.guard && !next.v.guard && !rd.pinned.has(c.v.output) && users.length === 1 && users[0] === next.step) {
      chainedOut.add(c);
      chainedIn.add(next);
    }
  }
  const q = (input: QMatmulKernel["input"], output: QMatmulKernel["output"], c: Candidate): string =>
    intern({ kind: "qmatmul", input, output, bias: c.v.bias !== undefined, relu: c.v.relu }, `qmatmul_${input === "dynamic" ? "dyn" : "static"}`);
  fm.int8 = cands.map((c) => ({
    ...c.v,
    dynamic: q("dynamic", "f32", c),
    static: q(chainedIn.has(c) ? "q8" : "static", chainedOut.has(c) ? "q8" : "f32", c),
    staticIn: chainedIn.has(c) ? "q8" : "f32",
    staticOut: chainedOut.has(c) ? "q8" : "f32",
  }));
  for (const c of cands) {
    // The step's own scratch (plan-matmul.ts) serves either variant: its per-call size gets the int8 floor too.
    const sv = fm.values[c.v.scratch]!;
    const need = qmatmulScratchBytes(c.K);
    const words = Math.ceil(need / 4);
    if ((sv.shape[0] as number) < words) sv.shape = [words];
    if (sv.source.kind === "temp" && sv.source.matmul) sv.source.matmul.minBytes = Math.max(sv.source.matmul.minBytes ?? 0, need);
  }
}
