// Codegen stage (wasm): elementwise kernels — the EwExpr tree rendered per element inside a loop nest over
// the output, with an f32x4/i32x4 inner loop (plus scalar tail) when every buffer is f32/i32 or f16/bf16 (those
// converted 4 lanes at a time by access.ts; f16/bf16 values are f32 in registers, rounded after each f16/bf16 op).
import type { EwExpr, ElementwiseKernel } from "../kernel.js";
import type { DType } from "../../ir/types.js";
import { dtypeBytes } from "../../ir/types.js";
import type { E, FnBuilder, Var } from "./context.js";
import { checkComputeDType } from "./context.js";
import { isFloatValue, loadLanes, loadValue, storeLanes, storeValue, valueType } from "./access.js";
import { isHalf, roundToHalf } from "./half.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../../runtime/dtype.js";
import { forRange, groupAxes, nest, product, returnIfEmpty } from "./loops.js";
import { WASM_LOWERING } from "./op-emitters.js";
import { FiniteMask, flagParams } from "./finite.js";

type Mode = "scalar" | "vector";
type OpNode = Extract<EwExpr, { t: "op" }>;
const VECTOR_DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i32", "bool"];
/** Ops whose result is exactly representable in the operands' f16/bf16 format: no rounding after them. */
const EXACT_ON_HALF = new Set(["neg", "abs", "relu", "maximum", "minimum", "where"]);

/** Per-kernel analysis of the expression: dtypes, reuse counts and whether it has a vector form. */
// Exported for the matmul epilogue (wasm/matmul-epilogue.ts), which renders the same expressions per tile.
export class ExprRenderer {
  /** Op nodes used more than once (a DAG from fusion), in post-order: computed once per element. */
  readonly shared: readonly OpNode[];
  readonly inputUses: number[];
  readonly vectorizable: boolean;

  constructor(private readonly fb: FnBuilder, private readonly k: ElementwiseKernel) {
    this.inputUses = k.inputs.map(() => 0);
    const seen = new Map<EwExpr, number>();
    // Buffers are read and written 4 lanes at a time: 4-byte dtypes, and f16/bf16 (converted, see access.ts).
    const extra = k.extraOutputs ?? [];
    // An input broadcast along the inner axis is loaded once per row and splatted, so its width does not matter
    // (the loss scaler's bool `all finite` flag in every update kernel must not cost the vector loop).
    const streamed = k.inputs.filter((i) => !(k.rank > 0 && i.bcast[k.rank - 1]));
    let vec = [...streamed.map((i) => i.dtype), k.out, ...extra.map((o) => o.dtype)].every((d) => d === "f32" || d === "i32" || isHalf(d));
    const visit = (n: EwExpr): void => {
      if (n.t === "in") {
        if (!Number.isInteger(n.index) || n.index < 0 || n.index >= k.inputs.length) {
          throw new Error(`wasm backend: expression reads input ${n.index} of ${k.inputs.length} (compiler bug)`);
        }
        this.inputUses[n.index]!++;
        return;
      }
      checkComputeDType(n.dtype);
      if (!VECTOR_DTYPES.includes(n.dtype)) vec = false;
      if (n.t === "const") return;
      const count = (seen.get(n) ?? 0) + 1;
      seen.set(n, count);
      if (count > 1) return;
      const low = WASM_LOWERING[n.op];
      if (low.kind !== "elementwise") throw new Error(`wasm backend: op ${n.op} cannot appear in an elementwise kernel (compiler bug)`);
      if (n.op === "cast") checkComputeDType((n.attrs as { to: DType }).to);
      n.args.forEach(visit);
      if (!low.simd || (low.vectorizes && !low.vectorizes(n.args.map((a) => this.dtypeOf(a))))) vec = false;
    };
    k.inputs.forEach((i) => checkComputeDType(i.dtype));
    checkComputeDType(k.out);
    // Extra outputs (multi-output kernels) share the DAG: a node reached from two roots is computed once.
    [k.expr, ...extra.map((o) => (checkComputeDType(o.dtype), o.expr))].forEach(visit);
    // Post-order of nodes seen more than once (children always precede parents).
    const order: OpNode[] = [];
    const done = new Set<EwExpr>();
    const post = (n: EwExpr): void => {
      if (n.t !== "op" || done.has(n)) return;
      done.add(n);
      n.args.forEach(post);
      if ((seen.get(n) ?? 0) > 1) order.push(n);
    };
    [k.expr, ...extra.map((o) => o.expr)].forEach(post);
    this.shared = order;
    this.vectorizable = vec;
    if ((this.dtypeOf(k.expr) === "f32") !== (k.out === "f32")) {
      throw new Error(`wasm backend: expression dtype ${this.dtypeOf(k.expr)} does not match output ${k.out} (compiler bug)`);
    }
  }

  dtypeOf(n: EwExpr): DType {
    return n.t === "in" ? this.k.inputs[n.index]!.dtype : n.dtype;
  }

  /** Statements computing one element (or 4 lanes) and the resulting value; `input(i)` yields input i. */
  /**
   * `storeRounds`: the caller stores the value as k.out (and each extra output as its dtype) with a rounding store
   * (storeValue/storeLanes), so an f16/bf16 root of that dtype is left unrounded (the store rounds it once, with
   * the same result: rounding a value already in the format is exact).
   */
  element(mode: Mode, input: (i: number) => E, storeRounds = false): { stmts: E[]; value: E; extra: E[] } {
    const { fb } = this;
    const m = fb.m;
    const locals = new Map<EwExpr, Var>();
    const typeOf = (d: DType) => (mode === "vector" ? fb.t.v128 : valueType(fb.t, d));
    const render = (n: EwExpr, define = false, rootStored = false): E => {
      if (n.t === "in") return input(n.index);
      if (n.t === "const") return constant(n.value, n.dtype);
      const bound = locals.get(n);
      if (bound && !define) return bound.get();
      const low = WASM_LOWERING[n.op];
      if (low.kind !== "elementwise") throw new Error(`wasm backend: op ${n.op} is not elementwise`);
      const argTypes = n.args.map((a) => this.dtypeOf(a));
      const args = n.args.map((a) => render(a));
      // f16/bf16 results are computed in f32 and rounded to their format (as the reference rounds them).
      const round = isHalf(n.dtype) && !rootStored && !EXACT_ON_HALF.has(n.op) && !(n.op === "cast" && argTypes[0] === n.dtype);
      if (mode === "vector") {
        const vv = low.simd!(fb, args, argTypes, n.dtype, n.attrs);
        return round ? roundToHalf(fb, n.dtype as "f16", vv, "f32x4") : vv;
      }
      const v = low.scalar(fb, args, argTypes, n.dtype, n.attrs);
      if (round) return roundToHalf(fb, n.dtype as "f16", v, "f32");
      if (n.op === "cast" || n.op === "where") return v;
      // Arithmetic on narrow integers wraps to the dtype's range.
      if (n.dtype === "u8") return m.i32.and(v, m.i32.const(255));
      if (n.dtype === "i8") return m.i32.extend8_s(v);
      return v;
    };
    const constant = (value: number, d: DType): E => {
      if (isFloatValue(d)) {
        const f = d === "f16" ? f16BitsToF32(f32ToF16Bits(value)) : d === "bf16" ? bf16BitsToF32(f32ToBf16Bits(value)) : Math.fround(value);
        return mode === "vector" ? fb.splatF32(f) : m.f32.const(f);
      }
      const iv = intConst(value, d);
      return mode === "vector" ? fb.splatI32(iv) : m.i32.const(iv);
    };
    const stmts: E[] = [];
    for (const n of this.shared) {
      const v = fb.local(typeOf(n.dtype));
      stmts.push(v.set(render(n, true)));
      locals.set(n, v);
    }
    const stored = (root: EwExpr, d: DType) => storeRounds && root.t === "op" && root.dtype === d && !this.shared.includes(root);
    const root = this.k.expr;
    return { stmts, value: render(root, false, stored(root, this.k.out)), extra: (this.k.extraOutputs ?? []).map((o) => render(o.expr, false, stored(o.expr, o.dtype))) };
  }
}

/** The i32 bit pattern a constant of integer/bool dtype holds. */
function intConst(v: number, d: DType): number {
  const t = Number.isFinite(v) ? Math.trunc(v) : 0;
  switch (d) {
    case "bool": return v !== 0 && !Number.isNaN(v) ? 1 : 0;
    case "u8": return t & 255;
    case "i8": return (t << 24) >> 24;
    default: return t | 0;
  }
}

/** Body of an elementwise kernel: params (in_0..in_{n-1}, out, xout_0..xout_{m-1}, [flag,] ext_0..ext_{rank-1}). */
export function renderElementwise(fb: FnBuilder, k: ElementwiseKernel): E {
  const m = fb.m;
  const n = k.inputs.length;
  k.inputs.forEach((inp, i) => {
    if (inp.bcast.length !== k.rank) throw new Error(`wasm backend: input ${i} bcast has ${inp.bcast.length} axes, rank is ${k.rank}`);
  });
  const ex = new ExprRenderer(fb, k);
  const bytes = k.inputs.map((i) => dtypeBytes(i.dtype));
  const outBytes = dtypeBytes(k.out);
  const extra = k.extraOutputs ?? [];
  const nx = extra.length;
  // all_finite's flag (kernel.ts "flag outputs"): a mask over the values stored to out, tested once at the end.
  const fin = k.flag ? new FiniteMask(fb, fb.param(n + 1 + nx), k.out) : null;
  const e0 = n + 1 + nx + flagParams(k);

  // Adjacent axes broadcast the same way in every input are walked as one axis.
  const groups = k.rank === 0 ? [{ axes: [] as number[], key: "0".repeat(n) }]
    : groupAxes(k.rank, (a) => k.inputs.map((i) => (i.bcast[a] ? "1" : "0")).join(""));
  const G = groups.length;
  const pro: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((a) => fb.param(e0 + a).get()));
    pro.push(p.set);
    return p.v;
  });
  pro.push(returnIfEmpty(fb, exts));
  if (fin) pro.push(fin.init());

  // Byte strides of each input over the outer groups (null where broadcast).
  const strides: (Var | null)[][] = k.inputs.map((_, i) => {
    const s: (Var | null)[] = new Array<Var | null>(G - 1).fill(null);
    const acc = fb.i32();
    pro.push(acc.set(m.i32.const(bytes[i]!)));
    for (let g = G - 1; g >= 1; g--) {
      if (groups[g]!.key[i] === "0") pro.push(acc.set(m.i32.mul(acc.get(), exts[g]!.get())));
      if (groups[g - 1]!.key[i] === "0") {
        const v = fb.i32();
        pro.push(v.set(acc.get()));
        s[g - 1] = v;
      }
    }
    return s;
  });

  const pOut = fb.i32();
  pro.push(pOut.set(fb.param(n).get()));
  // Extra outputs are contiguous like out: running pointers.
  const pX = extra.map((_, j) => {
    const v = fb.i32();
    pro.push(v.set(fb.param(n + 1 + j).get()));
    return v;
  });
  const innerKey = groups[G - 1]!.key;
  const L = exts[G - 1]!;

  const inner = (cur: readonly Var[]): E => {
    const stmts: E[] = [];
    const j = fb.i32();
    // Inputs broadcast along the inner axis: one load per row, hoisted (and splatted for the vector loop).
    const hoisted = k.inputs.map((inp, i) => {
      if (innerKey[i] !== "1" || ex.inputUses[i] === 0) return null;
      const s = fb.local(valueType(fb.t, inp.dtype));
      stmts.push(s.set(loadValue(fb, inp.dtype, cur[i]!.get())));
      let v: Var | null = null;
      if (ex.vectorizable) {
        v = fb.local(fb.t.v128);
        stmts.push(v.set(isFloatValue(inp.dtype) ? m.f32x4.splat(s.get()) : m.i32x4.splat(s.get())));
      }
      return { s, v };
    });
    const advance = (elems: number): E[] => {
      const out: E[] = [fb.inc(pOut, outBytes * elems), ...pX.map((v, j) => fb.inc(v, dtypeBytes(extra[j]!.dtype) * elems))];
      k.inputs.forEach((_, i) => {
        if (innerKey[i] === "0" && ex.inputUses[i]! > 0) out.push(fb.inc(cur[i]!, bytes[i]! * elems));
      });
      return out;
    };
    // Inputs read more than once per element are loaded once into a local.
    const loadInputs = (mode: "scalar" | "vector"): { stmts: E[]; get: (i: number) => E } => {
      const pre: E[] = [];
      const vals = k.inputs.map((inp, i) => {
        const h = hoisted[i];
        if (h) return () => (mode === "vector" ? h.v! : h.s).get();
        const load = (): E => (mode === "vector" ? loadLanes(fb, inp.dtype, cur[i]!.get()) : loadValue(fb, inp.dtype, cur[i]!.get()));
        if (ex.inputUses[i]! <= 1) return load;
        const v = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, inp.dtype));
        pre.push(v.set(load()));
        return () => v.get();
      });
      return { stmts: pre, get: (i) => vals[i]!() };
    };
    const body = (mode: "scalar" | "vector"): E[] => {
      const ins = loadInputs(mode);
      const el = ex.element(mode, ins.get, true);
      const st = (d: DType, p: Var, v: E) => (mode === "vector" ? storeLanes(fb, d, p.get(), v) : storeValue(fb, d, p.get(), v));
      const check = (v: Var): E[] => (fin ? [mode === "vector" ? fin.vector(() => v.get()) : fin.scalar(() => v.get())] : []);
      if (nx === 0 && !fin) return [...ins.stmts, ...el.stmts, st(k.out, pOut, el.value), ...advance(mode === "vector" ? 4 : 1)];
      // Every value is computed before the first store: out may be written over an input (StepManifest.inplace).
      // The flag's check reads out's value from its local, so the f32 value is tested before the store rounds it.
      const vals = [el.value, ...el.extra].map((v, j) => {
        const d = j === 0 ? k.out : extra[j - 1]!.dtype;
        const l = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, d));
        return { set: l.set(v), l, d, p: j === 0 ? pOut : pX[j - 1]! };
      });
      const stores = vals.map((x) => st(x.d, x.p, x.l.get()));
      return [...ins.stmts, ...el.stmts, ...vals.map((x) => x.set), ...stores, ...check(vals[0]!.l), ...advance(mode === "vector" ? 4 : 1)];
    };
    if (ex.vectorizable) {
      const L4 = fb.i32();
      stmts.push(L4.set(m.i32.and(L.get(), m.i32.const(-4))));
      stmts.push(forRange(fb, { i: j, from: m.i32.const(0), to: () => L4.get(), step: 4, body: body("vector") }));
      stmts.push(forRange(fb, { i: j, to: () => L.get(), body: body("scalar") }));
    } else {
      stmts.push(forRange(fb, { i: j, from: m.i32.const(0), to: () => L.get(), body: body("scalar") }));
    }
    return fb.seq(stmts);
  };

  const ptrs = k.inputs.map((_, i) => ({ start: fb.param(i).get(), strides: strides[i]! }));
  return fb.seq([...pro, nest(fb, exts.slice(0, G - 1), ptrs, inner), ...(fin ? [fin.flush()] : [])]);
}
