// Codegen stage (WGSL): the matmul epilogue (kernel.ts MatmulEpilogue) — the fused elementwise expression applied
// to each finished register sum before its store, with the epilogue inputs bound after the (unbound) scratch.
import type { ElementwiseKernel, MatmulKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import type { StorageBinding } from "./shader.js";
import { renderExpr } from "./elementwise.js";
import { bindingElem, loadElem, storeElem, type HalfMode } from "./half.js";

export interface WgslEpilogue {
  /** Bindings of the epilogue inputs e_0.. (they sit between scratch and out in the calling convention). */
  readonly buffers: readonly StorageBinding[];
  /** Statements once per batch entry (after cBase): each input's base offset. */
  readonly perBatch: readonly string[];
  /** Constant bindings, once at the top of main. */
  readonly consts: readonly string[];
  /**
   * The store of one register (value `acc`) at row `gr`, column `gc` (both in range), in its own block; `after`
   * adds statements on the value stored (an f32 register, before any narrowing), e.g. the finite flag's check.
   */
  store(gr: string, gc: string, acc: string, after?: (v: string) => string): string;
  readonly about: string;
}

/**
 * The epilogue of `k` (or the plain f32 store). `batchIndex(flags)` is the flattened batch index of an operand
 * broadcast along the batch axes flagged, as the matmul renderer computes it for lhs and rhs.
 */
export function wgslEpilogue(k: MatmulKernel, mode: HalfMode, use: (h: HelperName) => void, batchIndex: (bc: readonly boolean[]) => string): WgslEpilogue {
  const epi = k.epilogue;
  if (!epi) {
    return { buffers: [], perBatch: [], consts: [], about: "", store: (gr, gc, acc, after) => [`out[cBase + (${gr}) * N + ${gc}] = ${acc};`, ...(after ? [after(acc)] : [])].join(" ") };
  }
  const br = k.batchRank;
  if (epi.inputs.some((i) => i.bcast.length !== br + 2)) throw new Error(`wgsl backend: matmul epilogue flags do not match batch rank ${br} + 2 (compiler bug)`);
  if (epi.out !== "f32" && epi.out !== "f16" && epi.out !== "bf16") throw new Error(`wgsl backend: a matmul epilogue storing ${epi.out} is not supported`);
  const ew: ElementwiseKernel = {
    kind: "elementwise",
    rank: br + 2,
    inputs: [{ dtype: "f32", bcast: new Array<boolean>(br + 2).fill(false) }, ...epi.inputs],
    out: epi.out,
    expr: epi.expr,
  };
  const helpers = new Set<HelperName>();
  const { consts, stmts, results } = renderExpr(ew, [{ name: "out", dtype: epi.out, expr: epi.expr }], helpers, (i) => `x${i}`);
  helpers.forEach(use);
  const used = new Set<number>();
  const mark = (e: typeof epi.expr): void => {
    if (e.t === "in") used.add(e.index);
    else if (e.t === "op") e.args.forEach(mark);
  };
  mark(epi.expr);
  const perBatch = epi.inputs.map((inp, e) => {
    const rows = inp.bcast[br] ? "1u" : "M";
    const cols = inp.bcast[br + 1] ? "1u" : "N";
    return `let eBase${e} = (${batchIndex(inp.bcast.slice(0, br))}) * ${rows} * ${cols};`;
  });
  const store = (gr: string, gc: string, acc: string, after?: (v: string) => string): string => {
    const loads = epi.inputs.flatMap((inp, e) => {
      if (!used.has(e + 1)) return [];
      const [bm, bn] = [inp.bcast[br], inp.bcast[br + 1]];
      const off = [`eBase${e}`, ...(bm ? [] : [bn ? `(${gr})` : `(${gr}) * N`]), ...(bn ? [] : [gc])].join(" + ");
      return [`let x${e + 1} = ${loadElem(inp.dtype, mode, `e_${e}`, off, use)};`];
    });
    const st = storeElem(epi.out, mode, "out", `cBase + (${gr}) * N + ${gc}`, results[0]!, use);
    return ["{", `let x0 = ${acc};`, ...loads, ...stmts, ...st, ...(after ? [after(results[0]!)] : []), "}"].join(" ");
  };
  return {
    buffers: epi.inputs.map((inp, e) => ({ name: `e_${e}`, elem: bindingElem(inp.dtype, mode), write: false })),
    perBatch,
    consts,
    store,
    about: `epilogue over the sum and ${epi.inputs.length} input(s): ${JSON.stringify(epi.expr, (key, v: unknown) => (key === "attrs" || key === "dtype" ? undefined : v))}`,
  };
}
