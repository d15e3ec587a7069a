// Codegen stage (wasm): row gather and scatter-add kernels (kernel.ts: gather, scatter_add). A gathered row is one
// memory.copy of its bytes (any dtype); an id outside [0, rows) — unsigned compare, so negatives too — gives a
// zero row, and scatter_add skips it. scatter_add touches only the rows its ids name (after zeroing `out`).
import type { GatherKernel, ScatterAddKernel } from "../kernel.js";
import { dtypeBytes } from "../../ir/types.js";
import type { E, FnBuilder } from "./context.js";
import { forRange } from "./loops.js";

/** Params (table, ids, out, rows, n, len). */
export function renderGather(fb: FnBuilder, k: GatherKernel): E {
  const m = fb.m;
  const [table, ids, out, rows, n, len] = [0, 1, 2, 3, 4, 5].map((i) => fb.param(i));
  const rowBytes = fb.i32(), j = fb.i32(), id = fb.i32(), dst = fb.i32();
  return fb.seq([
    rowBytes.set(m.i32.mul(len!.get(), m.i32.const(dtypeBytes(k.dtype)))),
    dst.set(out!.get()),
    forRange(fb, {
      i: j, from: m.i32.const(0), to: () => n!.get(),
      body: [
        id.set(m.i32.load(0, 4, m.i32.add(ids!.get(), m.i32.shl(j.get(), m.i32.const(2))))),
        m.if(
          m.i32.lt_u(id.get(), rows!.get()),
          m.memory.copy(dst.get(), m.i32.add(table!.get(), m.i32.mul(id.get(), rowBytes.get())), rowBytes.get()),
          m.memory.fill(dst.get(), m.i32.const(0), rowBytes.get()),
        ),
        fb.bump(dst, rowBytes.get()),
      ],
    }),
  ]);
}

/** Params (ids, src, out, rows, n, len); f32. */
export function renderScatterAdd(fb: FnBuilder, _k: ScatterAddKernel): E {
  const m = fb.m;
  const [ids, src, out, rows, n, len] = [0, 1, 2, 3, 4, 5].map((i) => fb.param(i));
  const rowBytes = fb.i32(), j = fb.i32(), c = fb.i32(), id = fb.i32(), s = fb.i32(), d = fb.i32();
  return fb.seq([
    rowBytes.set(m.i32.shl(len!.get(), m.i32.const(2))),
    m.memory.fill(out!.get(), m.i32.const(0), m.i32.mul(rows!.get(), rowBytes.get())),
    s.set(src!.get()),
    forRange(fb, {
      i: j, from: m.i32.const(0), to: () => n!.get(),
      body: [
        id.set(m.i32.load(0, 4, m.i32.add(ids!.get(), m.i32.shl(j.get(), m.i32.const(2))))),
        m.if(
          m.i32.lt_u(id.get(), rows!.get()),
          fb.seq([
            d.set(m.i32.add(out!.get(), m.i32.mul(id.get(), rowBytes.get()))),
            forRange(fb, {
              i: c, from: m.i32.const(0), to: () => len!.get(),
              body: [
                m.f32.store(0, 4, m.i32.add(d.get(), m.i32.shl(c.get(), m.i32.const(2))), m.f32.add(
                  m.f32.load(0, 4, m.i32.add(d.get(), m.i32.shl(c.get(), m.i32.const(2)))),
                  m.f32.load(0, 4, m.i32.add(s.get(), m.i32.shl(c.get(), m.i32.const(2)))),
                )),
              ],
            }),
          ]),
        ),
        fb.bump(s, rowBytes.get()),
      ],
    }),
  ]);
}
