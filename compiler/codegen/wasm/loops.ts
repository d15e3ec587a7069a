// Codegen stage (wasm): loop-building helpers shared by the kernel renderers — counted loops and the
// nest of outer loops that walks several strided pointers at once.
import type { E, FnBuilder, Var } from "./context.js";

export interface RangeLoop {
  readonly i: Var;
  /** Start value; omit to continue from the counter's current value (a tail loop after a vector loop). */
  readonly from?: E;
  /** Exclusive bound, re-read each iteration (normally a local.get). */
  readonly to: () => E;
  readonly step?: number;
  readonly body: readonly E[];
}

/** `for (i = from; i < to; i += step) body` with the test at the bottom plus one guard (one branch per trip). */
export function forRange(fb: FnBuilder, l: RangeLoop): E {
  const m = fb.m;
  const exit = fb.label("exit");
  const cont = fb.label("loop");
  const step = l.step ?? 1;
  const parts: E[] = [];
  if (l.from !== undefined) parts.push(l.i.set(l.from));
  parts.push(
    m.block(exit, [
      m.br(exit, m.i32.ge_s(l.i.get(), l.to())),
      m.loop(cont, fb.seq([...l.body, fb.inc(l.i, step), m.br(cont, m.i32.lt_s(l.i.get(), l.to()))])),
    ]),
  );
  return fb.seq(parts);
}

/** A pointer walked by `nest`: starts at `start`; each outer level adds its byte stride (null = stays put). */
export interface NestPtr {
  readonly start: E;
  readonly strides: readonly (Var | null)[];
}

/**
 * Loops over `exts.length` outer levels; `inner` receives, per pointer, a local holding the address for the
 * current outer index, which it may advance freely (it is recomputed from the level above each trip).
 * Zero levels run `inner` once.
 */
export function nest(fb: FnBuilder, exts: readonly Var[], ptrs: readonly NestPtr[], inner: (cur: readonly Var[]) => E): E {
  const levels = exts.length;
  const cur: Var[][] = [];
  for (let k = 0; k <= levels; k++) cur.push(ptrs.map(() => fb.i32()));
  const init = ptrs.map((p, i) => cur[0]![i]!.set(p.start));
  const build = (k: number): E => {
    if (k === levels) return inner(cur[k]!);
    const j = fb.i32();
    const body: E[] = ptrs.map((_, i) => cur[k + 1]![i]!.set(cur[k]![i]!.get()));
    body.push(build(k + 1));
    ptrs.forEach((p, i) => {
      const s = p.strides[k];
      if (s) body.push(fb.bump(cur[k]![i]!, s.get()));
    });
    return forRange(fb, { i: j, from: fb.m.i32.const(0), to: () => exts[k]!.get(), body });
  };
  return fb.seq([...init, build(0)]);
}

/** `if (any ext == 0) return` — lets every later loop assume a non-empty iteration space. */
export function returnIfEmpty(fb: FnBuilder, exts: readonly Var[]): E {
  const m = fb.m;
  if (exts.length === 0) return m.nop();
  let cond = m.i32.eqz(exts[0]!.get());
  for (const e of exts.slice(1)) cond = m.i32.or(cond, m.i32.eqz(e.get()));
  return m.if(cond, m.return());
}

/** A local holding the product of the given i32 expressions (1 for none). */
export function product(fb: FnBuilder, factors: readonly E[]): { v: Var; set: E } {
  const m = fb.m;
  const v = fb.i32();
  let e = factors.length === 0 ? m.i32.const(1) : factors[0]!;
  for (const f of factors.slice(1)) e = m.i32.mul(e, f);
  return { v, set: v.set(e) };
}

/** Merges adjacent axes whose `key` is equal (they are contiguous together in every operand). */
export function groupAxes(rank: number, key: (axis: number) => string): { axes: number[]; key: string }[] {
  const groups: { axes: number[]; key: string }[] = [];
  for (let a = 0; a < rank; a++) {
    const k = key(a);
    const last = groups[groups.length - 1];
    if (last && last.key === k) last.axes.push(a);
    else groups.push({ axes: [a], key: k });
  }
  return groups;
}
