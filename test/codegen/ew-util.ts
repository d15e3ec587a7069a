// Builders and a runner for elementwise-kernel tests.
import type { ElementwiseKernel, EwExpr } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { arrayFor, type AnyArray, type Instance } from "./wasm-harness.js";
import { refEval } from "./ew-ref.js";

export const inp = (index: number): EwExpr => ({ t: "in", index });
export const cst = (value: number, dtype: DType): EwExpr => ({ t: "const", value, dtype });
export const op = (name: PrimOp, dtype: DType, ...args: EwExpr[]): EwExpr =>
  ({ t: "op", op: name, attrs: {} as never, dtype, args });
export const cast = (x: EwExpr, to: DType): EwExpr => ({ t: "op", op: "cast", attrs: { to } as never, dtype: to, args: [x] });

export function ew(rank: number, inputs: [DType, boolean[]?][], out: DType, expr: EwExpr): ElementwiseKernel {
  return {
    kind: "elementwise", rank, out, expr,
    inputs: inputs.map(([dtype, bcast]) => ({ dtype, bcast: bcast ?? new Array<boolean>(rank).fill(false) })),
  };
}

export const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
export const inShape = (ext: readonly number[], bcast: readonly boolean[]): number[] => ext.map((e, a) => (bcast[a] ? 1 : e));

/** Random data of a dtype; f32 values in [lo, hi]. */
export function randomData(d: DType, n: number, r: () => number, lo = -10, hi = 10): AnyArray {
  const a = arrayFor(d, n);
  for (let i = 0; i < n; i++) {
    switch (d) {
      case "f32": a[i] = lo + (hi - lo) * r(); break;
      case "i32": a[i] = Math.floor((r() - 0.5) * (r() < 0.2 ? 2 ** 32 : 200)); break;
      case "u8": a[i] = Math.floor(r() * 256); break;
      case "i8": a[i] = Math.floor(r() * 256) - 128; break;
      case "bool": a[i] = r() < 0.5 ? 1 : 0; break;
      default: throw new Error(d);
    }
  }
  return a;
}

/** Runs kernel `name` on the given input data (each laid out in its broadcast shape). */
export function runEw(inst: Instance, name: string, k: ElementwiseKernel, ext: readonly number[], data: readonly AnyArray[]): AnyArray {
  inst.reset();
  const ptrs = data.map((d) => inst.put(d));
  const n = numel(ext);
  const o = inst.out(k.out, n);
  inst.run(name, ...ptrs, o, ...ext);
  // The guard bytes after the output must be untouched.
  const guard = inst.bytes(o + arrayFor(k.out, 0).BYTES_PER_ELEMENT * n, 16);
  if (!guard.every((b) => b === 0xab)) throw new Error(`${name}: wrote past the end of the output`);
  return inst.read(k.out, o, n);
}

export function refEw(k: ElementwiseKernel, ext: readonly number[], data: readonly ArrayLike<number>[]): number[] {
  const n = numel(ext);
  const out: number[] = [];
  const idx = new Array<number>(ext.length).fill(0);
  const types = k.inputs.map((i) => i.dtype);
  for (let o = 0; o < n; o++) {
    let rem = o;
    for (let a = ext.length - 1; a >= 0; a--) {
      idx[a] = rem % ext[a]!;
      rem = Math.floor(rem / ext[a]!);
    }
    const vals = k.inputs.map((inp, i) => {
      const shape = inShape(ext, inp.bcast);
      let off = 0;
      for (let a = 0; a < ext.length; a++) off = off * shape[a]! + (inp.bcast[a] ? 0 : idx[a]!);
      return data[i]![off]!;
    });
    out.push(refEval(k.expr, vals, types));
  }
  return out;
}
