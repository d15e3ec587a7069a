// Codegen stage (wasm): the matmul epilogue (kernel.ts MatmulEpilogue) applied to one finished MR x NR tile of
// sums (still in L1, in C or the gemm's tile buffer): the fused elementwise expression, 4 columns at a time when
// the tile is full and the expression vectorises, then the store in the output's dtype. Runs once per tile,
// after the last K block, so its cost is O(M*N) beside the O(M*N*K) microkernel work.
import { dtypeBytes } from "../../ir/types.js";
import type { ElementwiseKernel, MatmulEpilogue } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { isFloatValue, loadLanes, loadValue, storeLanes, storeValue, valueType } from "./access.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";

/** Where the tile is: its sums, its position in the output matrix and its valid extent. */
export interface EpilogueTile {
  /** The tile's f32 sums, rows `ld` bytes apart (in C, or in the gemm's tile buffer for an edge tile). */
  readonly sums: Var;
  readonly ld: Var;
  /** The output matrix and the epilogue inputs' matrices for the current batch entry (byte addresses). */
  readonly out: Var;
  readonly inputs: readonly Var[];
  readonly N: Var;
  /** Global row and column of the tile's first element, and its valid rows / columns. */
  readonly row0: Var;
  readonly col0: Var;
  readonly h: Var;
  readonly w: Var;
}

export class EpilogueRenderer {
  private readonly ex: ExprRenderer;
  private readonly bytes: number[];
  private readonly outBytes: number;

  constructor(private readonly fb: FnBuilder, private readonly epi: MatmulEpilogue, private readonly nr: number) {
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
   * Statements that store the epilogue of the tile. Each buffer is walked by a row pointer (set once per tile,
   * bumped once per row); the columns of a row are immediate offsets, so an element costs its loads, the
   * expression and the store.
   */
  render(t: EpilogueTile): E {
    const { fb, epi, nr } = this;
    const m = fb.m;
    const i = fb.i32();
    const j = fb.i32();
    const c4 = (x: number): E => m.i32.const(x);
    const add = (a: E, b: E): E => m.i32.add(a, b);
    const mul = (a: E, b: E): E => m.i32.mul(a, b);
    const used = (e: number) => this.ex.inputUses[e + 1]! > 0;
    const bcM = (e: number) => epi.inputs[e]!.bcast.at(-2) === true;
    const bcN = (e: number) => epi.inputs[e]!.bcast.at(-1) === true;
    const setup: E[] = [];
    const bump: E[] = [];
    // Row pointers: sums, output, and each used input (a row-broadcast one stays put; a column-broadcast one
    // holds one element per row).
    const sums = fb.i32();
    setup.push(sums.set(t.sums.get()));
    bump.push(fb.bump(sums, t.ld.get()));
    const out = fb.i32();
    setup.push(out.set(add(t.out.get(), mul(add(mul(t.row0.get(), t.N.get()), t.col0.get()), c4(this.outBytes)))));
    bump.push(fb.bump(out, mul(t.N.get(), c4(this.outBytes))));
    const rows = epi.inputs.map((_, e) => {
      if (!used(e)) return null;
      const bytes = this.bytes[e]!;
      const p = fb.i32();
      const rowElems = bcN(e) ? t.row0.get() : mul(t.row0.get(), t.N.get());
      const idx = bcM(e) ? (bcN(e) ? null : t.col0.get()) : bcN(e) ? rowElems : add(rowElems, t.col0.get());
      setup.push(p.set(idx ? add(t.inputs[e]!.get(), mul(idx, c4(bytes))) : t.inputs[e]!.get()));
      if (!bcM(e)) bump.push(fb.bump(p, bcN(e) ? c4(bytes) : mul(t.N.get(), c4(bytes))));
      return p;
    });
    // Columns [q, q + 4) of the current row (vector), or column j (scalar).
    const element = (mode: "scalar" | "vector", q: number): E[] => {
      const pre: E[] = [];
      const at = (p: E, bytes: number): E => (mode === "scalar" ? add(p, mul(j.get(), c4(bytes))) : p);
      const off = (bytes: number) => (mode === "vector" ? q * bytes : 0);
      const acc = mode === "vector" ? m.v128.load(off(4), 4, sums.get()) : m.f32.load(0, 4, at(sums.get(), 4));
      const vals: (() => E)[] = [() => acc];
      epi.inputs.forEach((inp, e) => {
        const p = rows[e];
        if (!p) {
          vals.push(() => m.unreachable());
          return;
        }
        const bytes = this.bytes[e]!;
        let load: E;
        if (bcN(e)) {
          const s = loadValue(fb, inp.dtype, p.get());
          load = mode === "scalar" ? s : isFloatValue(inp.dtype) ? m.f32x4.splat(s) : m.i32x4.splat(s);
        } else load = mode === "vector" ? loadLanes(fb, inp.dtype, p.get(), off(bytes)) : loadValue(fb, inp.dtype, at(p.get(), bytes));
        const v = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, inp.dtype));
        pre.push(v.set(load));
        vals.push(() => v.get());
      });
      if (this.ex.inputUses[0]! > 1) {
        const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
        pre.push(v.set(acc));
        vals[0] = () => v.get();
      }
      const el = this.ex.element(mode, (k) => vals[k]!());
      const store = mode === "vector"
        ? storeLanes(fb, epi.out, out.get(), el.value, off(this.outBytes))
        : storeValue(fb, epi.out, at(out.get(), this.outBytes), el.value);
      return [...pre, ...el.stmts, store];
    };
    const scalarRow = forRange(fb, { i: j, from: c4(0), to: () => t.w.get(), body: element("scalar", 0) });
    let rowBody: E = scalarRow;
    if (this.ex.vectorizable) {
      const vec: E[] = [];
      for (let q = 0; q < nr; q += 4) vec.push(...element("vector", q));
      rowBody = m.if(m.i32.eq(t.w.get(), c4(nr)), fb.seq(vec), scalarRow);
    }
    return fb.seq([...setup, forRange(fb, { i, from: c4(0), to: () => t.h.get(), body: [rowBody, ...bump] })]);
  }
}
