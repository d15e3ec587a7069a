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

  /** Statements that store the epilogue of the tile. */
  render(t: EpilogueTile): E {
    const { fb, epi, nr } = this;
    const m = fb.m;
    const i = fb.i32();
    const j = fb.i32();
    const row = fb.i32();
    const c4 = (x: number): E => m.i32.const(x);
    const bcM = (e: number) => epi.inputs[e]!.bcast.at(-2) === true;
    const bcN = (e: number) => epi.inputs[e]!.bcast.at(-1) === true;
    // Element address of input e (or of the output, e = -1) at (row, col).
    const addr = (e: number, col: E): E => {
      const bytes = e < 0 ? this.outBytes : this.bytes[e]!;
      const base = e < 0 ? t.out : t.inputs[e]!;
      const r = e >= 0 && bcM(e) ? null : e >= 0 && bcN(e) ? row.get() : m.i32.mul(row.get(), t.N.get());
      const c = e >= 0 && bcN(e) ? null : col;
      const idx = r && c ? m.i32.add(r, c) : (r ?? c);
      return idx ? m.i32.add(base.get(), m.i32.mul(idx, c4(bytes))) : base.get();
    };
    const element = (mode: "scalar" | "vector", col: () => E, acc: E): E[] => {
      const pre: E[] = [];
      const vals: (() => E)[] = [() => acc];
      epi.inputs.forEach((inp, e) => {
        if (this.ex.inputUses[e + 1] === 0) {
          vals.push(() => m.unreachable());
          return;
        }
        let load: E;
        if (mode === "scalar") load = loadValue(fb, inp.dtype, addr(e, col()));
        else if (bcN(e)) {
          const s = loadValue(fb, inp.dtype, addr(e, col()));
          load = isFloatValue(inp.dtype) ? m.f32x4.splat(s) : m.i32x4.splat(s);
        } else load = loadLanes(fb, inp.dtype, addr(e, col()));
        const v = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, inp.dtype));
        pre.push(v.set(load));
        vals.push(() => v.get());
      });
      if (this.ex.inputUses[0]! > 1) {
        const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
        pre.push(v.set(acc));
        vals[0] = () => v.get();
      }
      const el = this.ex.element(mode, (q) => vals[q]!());
      const dst = addr(-1, col());
      const store = mode === "vector" ? storeLanes(fb, epi.out, dst, el.value) : storeValue(fb, epi.out, dst, el.value);
      return [...pre, ...el.stmts, store];
    };
    const tileAt = (off: E): E => m.i32.add(m.i32.add(t.sums.get(), m.i32.mul(i.get(), t.ld.get())), off);
    const scalarRow = forRange(fb, { i: j, from: c4(0), to: () => t.w.get(), body: element(
      "scalar", () => m.i32.add(t.col0.get(), j.get()), m.f32.load(0, 4, tileAt(m.i32.shl(j.get(), c4(2)))),
    ) });
    let rowBody: E = scalarRow;
    if (this.ex.vectorizable) {
      const vec: E[] = [];
      for (let q = 0; q < nr; q += 4) vec.push(...element("vector", () => m.i32.add(t.col0.get(), c4(q)), m.v128.load(0, 4, tileAt(c4(4 * q)))));
      rowBody = m.if(m.i32.eq(t.w.get(), c4(nr)), fb.seq(vec), scalarRow);
    }
    return forRange(fb, { i, from: c4(0), to: () => t.h.get(), body: [row.set(m.i32.add(t.row0.get(), i.get())), rowBody] });
  }
}
