// Codegen stage (wasm): the per-function building state shared by every kernel renderer — locals, labels,
// let-bindings and access to internal helper functions. Binaryen itself is passed in (never value-imported
// here) so that op-emitters.ts can type-import this file without loading binaryen's top-level await.
import type binaryen from "binaryen";
import type { DType } from "../../ir/types.js";

export type Bin = typeof binaryen;
export type Module = binaryen.Module;
export type E = binaryen.ExpressionRef;
export type WType = binaryen.Type;

/** Internal functions emitted on first use; "f32x4" is the lane-wise SIMD variant. */
export type HelperName = "exp" | "log" | "tanh" | "sigmoid" | "pow" | "div_i32" | "erf" | "sin" | "cos" | "log1p" | "expm1";
export type HelperWidth = "f32" | "f32x4" | "i32";

/** What an op emitter may use while building one element (or one 4-lane vector) of an expression. */
export interface EmitCtx {
  readonly m: Module;
  readonly t: { readonly i32: WType; readonly f32: WType; readonly v128: WType; readonly f64: WType };
  /** Evaluates `value` once into a fresh local; `body` may read it any number of times (expressions are trees). */
  bind(type: WType, value: E, body: (get: () => E) => E): E;
  /** Calls an internal helper, adding it to the module the first time it is used. */
  helper(name: HelperName, width: HelperWidth, args: readonly E[]): E;
  /** v128 constants with the same value in every lane. */
  splatF32(c: number): E;
  splatI32(c: number): E;
}

/** Adds helper functions to the module on demand (implemented in math.ts). */
export interface HelperSink {
  ensure(name: HelperName, width: HelperWidth): { fn: string; result: WType };
}

/** A local (or parameter) of the function being built. */
export class Var {
  constructor(private readonly m: Module, readonly index: number, readonly type: WType) {}
  get(): E { return this.m.local.get(this.index, this.type); }
  set(v: E): E { return this.m.local.set(this.index, v); }
  tee(v: E): E { return this.m.local.tee(this.index, v, this.type); }
}

export class FnBuilder implements EmitCtx {
  readonly vars: WType[] = [];
  readonly t: { readonly i32: WType; readonly f32: WType; readonly v128: WType; readonly f64: WType };
  private labels = 0;

  constructor(readonly b: Bin, readonly m: Module, readonly paramTypes: readonly WType[], private readonly helpers: HelperSink) {
    this.t = { i32: b.i32, f32: b.f32, v128: b.v128, f64: b.f64 };
  }

  param(i: number): Var {
    if (i >= this.paramTypes.length) throw new Error(`wasm backend: param ${i} out of range (compiler bug)`);
    return new Var(this.m, i, this.paramTypes[i]!);
  }

  local(type: WType): Var {
    this.vars.push(type);
    return new Var(this.m, this.paramTypes.length + this.vars.length - 1, type);
  }

  i32(): Var { return this.local(this.b.i32); }

  /** A label unique within this function. */
  label(prefix: string): string {
    return `${prefix}${this.labels++}`;
  }

  bind(type: WType, value: E, body: (get: () => E) => E): E {
    const v = this.local(type);
    return this.m.block(null, [v.set(value), body(() => v.get())], this.b.auto);
  }

  helper(name: HelperName, width: HelperWidth, args: readonly E[]): E {
    const { fn, result } = this.helpers.ensure(name, width);
    return this.m.call(fn, args as E[], result);
  }

  splatF32(c: number): E {
    return this.m.v128.const(Array.from(new Uint8Array(new Float32Array([c, c, c, c]).buffer)));
  }

  splatI32(c: number): E {
    return this.m.v128.const(Array.from(new Uint8Array(new Int32Array([c, c, c, c]).buffer)));
  }

  /** `v += delta` for an i32 local (delta an expression; ExpressionRefs are numbers too, hence two methods). */
  bump(v: Var, delta: E): E {
    return v.set(this.m.i32.add(v.get(), delta));
  }

  /** `v += n` for an i32 local and a constant n. */
  inc(v: Var, n: number): E {
    return v.set(this.m.i32.add(v.get(), this.m.i32.const(n)));
  }

  seq(children: readonly E[]): E {
    return children.length === 1 ? children[0]! : this.m.block(null, children as E[], this.b.none);
  }
}

/** The error every renderer raises for dtypes the wasm backend does not handle yet. */
export function unsupportedDType(d: DType): Error {
  return new Error(`wasm backend: dtype ${d} not supported yet`);
}

/** Element dtypes kernels load, compute on and store; f64 throws. f16/bf16 are storage: f32 in registers (half.ts). */
export function checkComputeDType(d: DType): void {
  if (d === "f64") throw unsupportedDType(d);
}
