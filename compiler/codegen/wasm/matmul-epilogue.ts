// Codegen stage (wasm): the matmul epilogue (kernel.ts MatmulEpilogue) applied to a finished row band of sums
// (MR rows of an nc-column block, still in cache, in C or the partial-sum block): the fused elementwise
// expression row by row, 4 columns at a time when it vectorises, then the store in the output's dtype. Runs
// after the last K block, so its cost is O(M*N) beside the O(M*N*K) microkernel work, and it walks each row
// contiguously (a tile-by-tile epilogue would read a residual 32 bytes per 4 KiB row stride, measured slower).
import { dtypeBytes } from "../../ir/types.js";
import type { ElementwiseKernel, MatmulEpilogue } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { isFloatValue, loadLanes, loadValue, storeLanes, storeValue, valueType } from "./access.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";
import type { FiniteMask } from "./finite.js";
import type { DType } from "../../ir/types.js";

/** Where the block is: its sums, its position in the output matrix and its extent. */
export interface EpilogueTile {
  /** The block's f32 sums, rows `ld` bytes apart. */
  readonly sums: Var;
  readonly ld: Var;
  /** The output matrix and the epilogue inputs' matrices for the current batch entry (byte addresses). */
  readonly out: Var;
  readonly inputs: readonly Var[];
  readonly N: Var;
  /** Global row and column of the block's first element, and its rows / columns. */
  readonly row0: Var;
  readonly col0: Var;
  readonly h: Var;
  readonly w: Var;
}

export class EpilogueRenderer {
  private readonly ex: ExprRenderer;
  private readonly bytes: number[];
  private readonly outBytes: number;

  /** The dtype of the values stored to out (what an all_finite flag judges them as). */
  get stored(): DType {
    return this.epi.out;
  }

  constructor(private readonly fb: FnBuilder, private readonly epi: MatmulEpilogue) {
    const rank = (epi.inputs[0]?.bcast.length ?? 2);
    const k: ElementwiseKernel = {
      kind: "elementwise",
      rank,
      inputs: [{ dtype: "f32", bcast: new Array<boolean>(rank).fill(false) }, ...epi.inputs],
      out: epi.out,
      expr: epi.expr,
    };
    this.ex = new ExprRenderer(fb, k);
    this.bytes = epi.inputs.map((i) => dtypeBytes(i.dtype));
    this.outBytes = dtypeBytes(epi.out);
  }

  /**
   * Statements that store the epilogue of an h x w block of sums (a row band of the gemm). Each buffer is walked
   * by a row pointer (set once, bumped once per row) and a column pointer along the row: a vector loop over 4
   * columns at a time when the expression vectorises, then a scalar tail. `fin` folds each value stored into
   * all_finite's mask (tested by the caller).
   */
  render(t: EpilogueTile, fin?: FiniteMask): E {
    const { fb, epi } = this;
    const m = fb.m;
    const [i, j, w4] = [fb.i32(), fb.i32(), fb.i32()];
    const c4 = (x: number): E => m.i32.const(x);
    const add = (a: E, b: E): E => m.i32.add(a, b);
    const mul = (a: E, b: E): E => m.i32.mul(a, b);
    const bcM = (e: number) => epi.inputs[e]!.bcast.at(-2) === true;
    const bcN = (e: number) => epi.inputs[e]!.bcast.at(-1) === true;
    const setup: E[] = [];
    const nextRow: E[] = [];
    /** A row pointer and a column pointer over one buffer; `step` bytes per element along the row (0: fixed). */
    const stream = (start: E, rowBytes: E | null, step: number) => {
      const row = fb.i32();
      const col = fb.i32();
      setup.push(row.set(start));
      if (rowBytes) nextRow.push(fb.bump(row, rowBytes));
      return { row, col, step };
    };
    const sums = stream(t.sums.get(), t.ld.get(), 4);
    const out = stream(add(t.out.get(), mul(add(mul(t.row0.get(), t.N.get()), t.col0.get()), c4(this.outBytes))), mul(t.N.get(), c4(this.outBytes)), this.outBytes);
    const ins = epi.inputs.map((_, e) => {
      if (this.ex.inputUses[e + 1] === 0) return null;
      const bytes = this.bytes[e]!;
      const rowElems = bcN(e) ? t.row0.get() : mul(t.row0.get(), t.N.get());
      const idx = bcM(e) ? (bcN(e) ? null : t.col0.get()) : bcN(e) ? rowElems : add(rowElems, t.col0.get());
      const start = idx ? add(t.inputs[e]!.get(), mul(idx, c4(bytes))) : t.inputs[e]!.get();
      return stream(start, bcM(e) ? null : bcN(e) ? c4(bytes) : mul(t.N.get(), c4(bytes)), bcN(e) ? 0 : bytes);
    });
    const streams = [sums, out, ...ins.filter((x) => x !== null)];
    // A column-broadcast input holds one value per row: loaded (and splatted) once per row.
    const perRow: E[] = [];
    const rowVals = epi.inputs.map((inp, e) => {
      const st = ins[e];
      if (!st || !bcN(e)) return null;
      const s = fb.local(valueType(fb.t, inp.dtype));
      perRow.push(s.set(loadValue(fb, inp.dtype, st.row.get())));
      let v: typeof s | null = null;
      if (this.ex.vectorizable) {
        v = fb.local(fb.t.v128);
        perRow.push(v.set(isFloatValue(inp.dtype) ? m.f32x4.splat(s.get()) : m.i32x4.splat(s.get())));
      }
      return { s, v };
    });
    const element = (mode: "scalar" | "vector"): E[] => {
      const lanes = mode === "vector" ? 4 : 1;
      const pre: E[] = [];
      const acc = mode === "vector" ? m.v128.load(0, 4, sums.col.get()) : m.f32.load(0, 4, sums.col.get());
      const vals: (() => E)[] = [() => acc];
      epi.inputs.forEach((inp, e) => {
        const st = ins[e];
        const rv = rowVals[e];
        if (!st) vals.push(() => m.unreachable());
        else if (rv) vals.push(() => (mode === "vector" ? rv.v! : rv.s).get());
        else {
          const v = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, inp.dtype));
          pre.push(v.set(mode === "vector" ? loadLanes(fb, inp.dtype, st.col.get()) : loadValue(fb, inp.dtype, st.col.get())));
          vals.push(() => v.get());
        }
      });
      if (this.ex.inputUses[0]! > 1) {
        const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
        pre.push(v.set(acc));
        vals[0] = () => v.get();
      }
      // The store rounds to epi.out: a root cast to that format is not rounded twice (narrow, widen, narrow).
      const el = this.ex.element(mode, (k) => vals[k]!(), true);
      const st = (v: E): E => (mode === "vector" ? storeLanes(fb, epi.out, out.col.get(), v) : storeValue(fb, epi.out, out.col.get(), v));
      const bump = streams.filter((s) => s.step > 0).map((s) => fb.inc(s.col, s.step * lanes));
      if (!fin) return [...pre, ...el.stmts, st(el.value), ...bump];
      // The f32 value before the store narrows it: the bound of `stored` says whether the store is finite.
      const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
      return [...pre, ...el.stmts, v.set(el.value), st(v.get()), mode === "vector" ? fin.vector(() => v.get()) : fin.scalar(() => v.get()), ...bump];
    };
    const row: E[] = [...perRow, ...streams.map((st) => st.col.set(st.row.get()))];
    if (this.ex.vectorizable) {
      row.push(forRange(fb, { i: j, from: c4(0), to: () => w4.get(), step: 4, body: element("vector") }));
      row.push(forRange(fb, { i: j, to: () => t.w.get(), body: element("scalar") }));
    } else {
      row.push(forRange(fb, { i: j, from: c4(0), to: () => t.w.get(), body: element("scalar") }));
    }
    return fb.seq([...setup, w4.set(m.i32.and(t.w.get(), c4(-4))), forRange(fb, { i, from: c4(0), to: () => t.h.get(), body: [...row, ...nextRow] })]);
  }
}
