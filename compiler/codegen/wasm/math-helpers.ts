// Codegen stage (wasm): the math helper functions a module gets on first use (exp, log, tanh, sigmoid, pow from
// math.ts, the `exp` op as its fast form expFast; the extra functions of math-extra.ts; integer division), each
// built once per width.
import type { Bin, E, HelperName, HelperSink, HelperWidth, Module, WType } from "./context.js";
import { FnBuilder } from "./context.js";
import { scalarLanes, vectorLanes } from "./lanes.js";
import { expFast, logCore, powCore, Seq, sigmoidCore, tanhCore } from "./math.js";
import type { SimdVariant } from "./matmul-blocking.js";
import { EXTRA_CORES } from "./math-extra.js";

const FLOAT_CORES: Record<Exclude<HelperName, "div_i32">, { arity: number; core: (s: Seq, args: (() => E)[]) => E }> = {
  exp: { arity: 1, core: (s, [x]) => expFast(s, x!) },
  log: { arity: 1, core: (s, [x]) => logCore(s, x!) },
  tanh: { arity: 1, core: (s, [x]) => tanhCore(s, x!) },
  sigmoid: { arity: 1, core: (s, [x]) => sigmoidCore(s, x!) },
  pow: { arity: 2, core: (s, [a, b]) => powCore(s, a!, b!) },
  ...EXTRA_CORES,
};

/** Adds helper functions to one module on first request; names cannot clash with kernels ("__kiln_" prefix). */
export class MathHelpers implements HelperSink {
  private readonly made = new Map<string, { fn: string; result: WType }>();
  constructor(private readonly b: Bin, private readonly m: Module, private readonly simd: SimdVariant = "plain") {}

  ensure(name: HelperName, width: HelperWidth): { fn: string; result: WType } {
    const fn = `__kiln_${name}_${width}`;
    const known = this.made.get(fn);
    if (known) return known;
    const { b, m } = this;
    let made: { fn: string; result: WType };
    if (name === "div_i32") {
      if (width !== "i32") throw new Error(`wasm backend: no ${width} form of div_i32 (compiler bug)`);
      made = { fn, result: b.i32 };
      const fb = new FnBuilder(b, m, [b.i32, b.i32], this);
      const [x, y] = [fb.param(0), fb.param(1)];
      // Truncating division that never traps: x/0 = 0 and INT_MIN / -1 wraps to INT_MIN.
      const body = m.block(null, [
        m.if(m.i32.eqz(y.get()), m.return(m.i32.const(0))),
        m.if(m.i32.eq(y.get(), m.i32.const(-1)), m.return(m.i32.sub(m.i32.const(0), x.get()))),
        m.i32.div_s(x.get(), y.get()),
      ], b.i32);
      m.addFunction(fn, b.createType([b.i32, b.i32]), b.i32, fb.vars, body);
    } else if (name === "exp" && width === "f32" && this.simd === "relaxed") {
      // The relaxed vector form fuses its multiply-adds and wasm has no scalar FMA: the scalar form runs the
      // vector code on a splat, so a vector loop's tail gives the same bits as its body. A copy, not a call:
      // each helper then has one caller and Binaryen inlines both into the kernel (a call per vector cost 35%).
      made = { fn, result: b.f32 };
      const fb = new FnBuilder(b, m, [b.f32], this);
      const s = new Seq(fb, vectorLanes(b, m, true));
      const lane0 = (v: E): E => m.f32x4.extract_lane(v, 0);
      const body = s.done(lane0(expFast(s, () => m.f32x4.splat(fb.param(0).get()), (v) => m.return(lane0(v)))));
      m.addFunction(fn, b.createType([b.f32]), b.f32, fb.vars, body);
    } else {
      if (width === "i32") throw new Error(`wasm backend: ${name} has no i32 form (compiler bug)`);
      const L = width === "f32" ? scalarLanes(b, m) : vectorLanes(b, m, this.simd === "relaxed");
      const { arity, core } = FLOAT_CORES[name];
      const params = new Array<WType>(arity).fill(L.ft);
      const fb = new FnBuilder(b, m, params, this);
      const s = new Seq(fb, L);
      const args = params.map((_, i) => () => fb.param(i).get());
      const body = s.done(core(s, args));
      made = { fn, result: L.ft };
      m.addFunction(fn, b.createType(params), L.ft, fb.vars, body);
    }
    this.made.set(fn, made);
    return made;
  }
}
