// Codegen stage (wasm): strided copy kernels (every layout op — permute, slice, broadcast, concat parts) and
// iota. Copies move raw bytes, so they work for any dtype, including ones no compute kernel supports yet.
import type { CopyKernel } from "../kernel.js";
import { dtypeBytes } from "../../ir/types.js";
import type { E, FnBuilder, Var } from "./context.js";
import { copyElement } from "./access.js";
import { forRange, nest, returnIfEmpty } from "./loops.js";

/** Contiguous runs at least this long use memory.copy; shorter ones are cheaper as a load/store loop. */
const BULK_MIN_BYTES = 64;

/** Params (in, out, inOffset, outOffset, ext_0.., inStride_0.., outStride_0..), offsets/strides in elements. */
export function renderCopy(fb: FnBuilder, k: CopyKernel): E {
  const m = fb.m;
  const r = k.rank;
  const size = dtypeBytes(k.dtype);
  const ext = (a: number): Var => fb.param(4 + a);
  const inStride = (a: number): Var => fb.param(4 + r + a);
  const outStride = (a: number): Var => fb.param(4 + 2 * r + a);
  const byteAddr = (base: number, off: number): E =>
    m.i32.add(fb.param(base).get(), m.i32.mul(fb.param(off).get(), m.i32.const(size)));
  if (r === 0) return copyElement(m, size, byteAddr(1, 3), byteAddr(0, 2));

  const pro: E[] = [returnIfEmpty(fb, Array.from({ length: r }, (_, a) => ext(a)))];
  const bytesOf = (s: Var): Var => {
    const v = fb.i32();
    pro.push(v.set(m.i32.mul(s.get(), m.i32.const(size))));
    return v;
  };
  const inBytes = Array.from({ length: r }, (_, a) => bytesOf(inStride(a)));
  const outBytes = Array.from({ length: r }, (_, a) => bytesOf(outStride(a)));
  const last = r - 1;

  const inner = ([src, dst]: readonly Var[]): E => {
    const j = fb.i32();
    const loop = forRange(fb, {
      i: j, from: m.i32.const(0), to: () => ext(last).get(),
      body: [copyElement(m, size, dst!.get(), src!.get()), fb.bump(src!, inBytes[last]!.get()), fb.bump(dst!, outBytes[last]!.get())],
    });
    const runBytes = m.i32.mul(ext(last).get(), m.i32.const(size));
    const contiguous = m.i32.and(
      m.i32.and(m.i32.eq(inStride(last).get(), m.i32.const(1)), m.i32.eq(outStride(last).get(), m.i32.const(1))),
      m.i32.ge_s(ext(last).get(), m.i32.const(Math.ceil(BULK_MIN_BYTES / size))),
    );
    return m.if(contiguous, m.memory.copy(dst!.get(), src!.get(), runBytes), loop);
  };
  const ptrs = [
    { start: byteAddr(0, 2), strides: inBytes.slice(0, last) },
    { start: byteAddr(1, 3), strides: outBytes.slice(0, last) },
  ];
  return fb.seq([...pro, nest(fb, Array.from({ length: last }, (_, a) => ext(a)), ptrs, inner)]);
}

/** Params (out, n): out[i] = i as i32, four lanes per store. */
export function renderIota(fb: FnBuilder): E {
  const m = fb.m;
  const [out, n] = [fb.param(0), fb.param(1)];
  const p = fb.i32();
  const i = fb.i32();
  const n4 = fb.i32();
  const v = fb.local(fb.t.v128);
  return fb.seq([
    p.set(out.get()),
    n4.set(m.i32.and(n.get(), m.i32.const(-4))),
    v.set(m.v128.const(Array.from(new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer)))),
    forRange(fb, {
      i, from: m.i32.const(0), to: () => n4.get(), step: 4,
      body: [m.v128.store(0, 4, p.get(), v.get()), v.set(m.i32x4.add(v.get(), fb.splatI32(4))), fb.inc(p, 16)],
    }),
    forRange(fb, { i, to: () => n.get(), body: [m.i32.store(0, 4, p.get(), i.get()), fb.inc(p, 4)] }),
  ]);
}
