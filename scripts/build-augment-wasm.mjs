// Generates the augmentation kernels (flip, bilinear rotate, crop with padding, normalize, u8 -> f32) as one wasm
// module with Binaryen, and writes it base64-encoded to runtime/data/augment-wasm.ts so the runtime needs no compiler.
// Usage: node scripts/build-augment-wasm.mjs [--check]   (--check: exit 1 if the committed file is stale)
//
// ABI (pointers are byte addresses in the imported env.memory; images are [n, c, h, w] planes, row-major):
//   flip_{f32,u8}(src, dst, n, c, h, w, flags)           flags: u8 per sample, bit 0 horizontal, bit 1 vertical
//   rotate_{f32,u8}(src, dst, n, c, h, w, params, fill)  params: f64 [cos, sin] per sample; fill: f64
//   crop_{f32,u8}(src, dst, n, c, h, w, oh, ow, offsets, fill)  offsets: i32 [dy, dx] per sample (may be < 0)
//   normalize_f32(src, dst, n, c, plane, stats)          stats: f64 [mean, std] per channel
//   to_tensor_u8(src, dst, n, c, h, w, hwc)               dst f32 = src / 255; hwc != 0: src is [n, h, w, c]
// Arithmetic is f64 throughout (values promoted on load, demoted on store) so runtime/data/augment-ref.ts, which
// does the same operations on JS numbers in the same order, is a bit-exact oracle.

import { writeFileSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const OUT = join(dirname(fileURLToPath(import.meta.url)), "..", "runtime", "data", "augment-wasm.ts");

/** Per-function building state: typed locals and structured-loop helpers. */
class Fn {
  constructor(b, m, params) {
    this.b = b;
    this.m = m;
    this.params = params;
    this.vars = [];
    this.labels = 0;
  }
  local(type) {
    this.vars.push(type);
    return this.params.length + this.vars.length - 1;
  }
  get(i) {
    const type = i < this.params.length ? this.params[i] : this.vars[i - this.params.length];
    return this.m.local.get(i, type);
  }
  set(i, v) {
    return this.m.local.set(i, v);
  }
  /** for (v = 0; v < end; v++) { ...body } with end an i32 expression evaluated each iteration. */
  loop(v, end, body) {
    const { m } = this;
    const id = this.labels++;
    return m.block(null, [
      this.set(v, m.i32.const(0)),
      m.block(`done${id}`, [
        m.loop(`next${id}`, m.block(null, [
          m.br(`done${id}`, m.i32.ge_s(this.get(v), end)),
          ...body,
          this.set(v, m.i32.add(this.get(v), m.i32.const(1))),
          m.br(`next${id}`),
        ])),
      ]),
    ]);
  }
}

/** Element access for one element type: load promotes to f64, store demotes (u8 rounds half up and clamps). */
function elem(b, m, kind) {
  const shift = kind === "f32" ? 2 : 0;
  const addr = (base, idx) => m.i32.add(base, shift ? m.i32.shl(idx, m.i32.const(shift)) : idx);
  if (kind === "f32") {
    return {
      load: (base, idx) => m.f64.promote(m.f32.load(0, 4, addr(base, idx))),
      store: (base, idx, v) => m.f32.store(0, 4, addr(base, idx), m.f32.demote(v)),
    };
  }
  return {
    load: (base, idx) => m.f64.convert_u.i32(m.i32.load8_u(0, 1, addr(base, idx))),
    store: (base, idx, v) => m.i32.store8(0, 1, addr(base, idx),
      m.i32.trunc_s_sat.f64(m.f64.min(m.f64.const(255), m.f64.max(m.f64.const(0), m.f64.floor(m.f64.add(v, m.f64.const(0.5))))))),
  };
}

// ((a * b + c) * d + e) ... : flat index of a multi-index, as i32 expressions.
function flat(m, terms) {
  let e = terms[0];
  for (let i = 1; i < terms.length; i += 2) e = m.i32.add(m.i32.mul(e, terms[i]), terms[i + 1]);
  return e;
}

/** Loops over s < n, ch < c, y < h, x < w (w/h given by the caller: output dims) around body(s, ch, y, x). */
function imageLoops(f, dims, body, perSample = []) {
  const { m, b } = f;
  const [s, ch, y, x] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  return f.loop(s, dims.n, [
    ...perSample.map((g) => g(s)),
    f.loop(ch, dims.c, [f.loop(y, dims.h, [f.loop(x, dims.w, body(s, ch, y, x))])]),
  ]);
}

function addFlip(b, m, kind) {
  const P = [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32];
  const f = new Fn(b, m, P);
  const [src, dst, n, c, h, w, flags] = [0, 1, 2, 3, 4, 5, 6].map((i) => () => f.get(i));
  const e = elem(b, m, kind);
  const flag = f.local(b.i32);
  const sy = f.local(b.i32);
  const sx = f.local(b.i32);
  const body = (s, ch, y, x) => [
    f.set(sy, m.select(m.i32.and(f.get(flag), m.i32.const(2)), m.i32.sub(m.i32.sub(h(), m.i32.const(1)), f.get(y)), f.get(y))),
    f.set(sx, m.select(m.i32.and(f.get(flag), m.i32.const(1)), m.i32.sub(m.i32.sub(w(), m.i32.const(1)), f.get(x)), f.get(x))),
    e.store(dst(), flat(m, [f.get(s), c(), f.get(ch), h(), f.get(y), w(), f.get(x)]),
      e.load(src(), flat(m, [f.get(s), c(), f.get(ch), h(), f.get(sy), w(), f.get(sx)]))),
  ];
  const loadFlag = (s) => f.set(flag, m.i32.load8_u(0, 1, m.i32.add(flags(), f.get(s))));
  const code = imageLoops(f, { n: n(), c: c(), h: h(), w: w() }, body, [loadFlag]);
  m.addFunction(`flip_${kind}`, b.createType(P), b.none, f.vars, code);
}

/** p(yy, xx): the source pixel, or fill outside the image (unsigned compare covers both sides). Arguments are
 * thunks because Binaryen expressions are trees: each use needs a fresh node. */
function tap(f, e, plane, h, w, yy, xx, fill) {
  const { m } = f;
  const inside = m.i32.and(m.i32.lt_u(yy(), h()), m.i32.lt_u(xx(), w()));
  return m.if(inside, e.load(plane(), m.i32.add(m.i32.mul(yy(), w()), xx())), fill());
}

function addRotate(b, m, kind) {
  const P = [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.f64];
  const f = new Fn(b, m, P);
  const [src, dst, n, c, h, w, params, fill] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => () => f.get(i));
  const e = elem(b, m, kind);
  const F = b.f64;
  const [cos, sin, cx, cy, dx, dy, xs, ys, fx, fy] = Array.from({ length: 10 }, () => f.local(F));
  const [x0, y0, plane] = [f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const g = (v) => f.get(v);
  const k = (v) => m.f64.const(v);
  const sub1 = (v) => m.f64.sub(k(1), g(v));
  const body = (s, ch, y, x) => {
    const p = (oy, ox) => tap(f, e, () => g(plane), h, w, () => m.i32.add(g(y0), m.i32.const(oy)), () => m.i32.add(g(x0), m.i32.const(ox)), fill);
    return [
      f.set(plane, m.i32.add(src(), m.i32.shl(m.i32.mul(flat(m, [g(s), c(), g(ch)]), m.i32.mul(h(), w())), m.i32.const(kind === "f32" ? 2 : 0)))),
      f.set(dx, m.f64.sub(m.f64.convert_s.i32(g(x)), g(cx))),
      f.set(dy, m.f64.sub(m.f64.convert_s.i32(g(y)), g(cy))),
      f.set(xs, m.f64.sub(m.f64.add(g(cx), m.f64.mul(g(cos), g(dx))), m.f64.mul(g(sin), g(dy)))),
      f.set(ys, m.f64.add(m.f64.add(g(cy), m.f64.mul(g(sin), g(dx))), m.f64.mul(g(cos), g(dy)))),
      f.set(x0, m.i32.trunc_s_sat.f64(m.f64.floor(g(xs)))),
      f.set(y0, m.i32.trunc_s_sat.f64(m.f64.floor(g(ys)))),
      f.set(fx, m.f64.sub(g(xs), m.f64.floor(g(xs)))),
      f.set(fy, m.f64.sub(g(ys), m.f64.floor(g(ys)))),
      e.store(dst(), flat(m, [g(s), c(), g(ch), h(), g(y), w(), g(x)]),
        m.f64.add(
          m.f64.mul(sub1(fy), m.f64.add(m.f64.mul(sub1(fx), p(0, 0)), m.f64.mul(g(fx), p(0, 1)))),
          m.f64.mul(g(fy), m.f64.add(m.f64.mul(sub1(fx), p(1, 0)), m.f64.mul(g(fx), p(1, 1)))))),
    ];
  };
  const perSample = (s) => m.block(null, [
    f.set(cos, m.f64.load(0, 8, m.i32.add(params(), m.i32.shl(g(s), m.i32.const(4))))),
    f.set(sin, m.f64.load(8, 8, m.i32.add(params(), m.i32.shl(g(s), m.i32.const(4))))),
  ]);
  const setup = [
    f.set(cx, m.f64.mul(m.f64.convert_s.i32(m.i32.sub(w(), m.i32.const(1))), k(0.5))),
    f.set(cy, m.f64.mul(m.f64.convert_s.i32(m.i32.sub(h(), m.i32.const(1))), k(0.5))),
  ];
  const code = m.block(null, [...setup, imageLoops(f, { n: n(), c: c(), h: h(), w: w() }, body, [perSample])]);
  m.addFunction(`rotate_${kind}`, b.createType(P), b.none, f.vars, code);
}

function addCrop(b, m, kind) {
  const P = [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.f64];
  const f = new Fn(b, m, P);
  const [src, dst, n, c, h, w, oh, ow, offsets, fill] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => () => f.get(i));
  const e = elem(b, m, kind);
  const [oy, ox, plane] = [f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const g = (v) => f.get(v);
  const body = (s, ch, y, x) => [
    f.set(plane, m.i32.add(src(), m.i32.shl(m.i32.mul(flat(m, [g(s), c(), g(ch)]), m.i32.mul(h(), w())), m.i32.const(kind === "f32" ? 2 : 0)))),
    e.store(dst(), flat(m, [g(s), c(), g(ch), oh(), g(y), ow(), g(x)]),
      tap(f, e, () => g(plane), h, w, () => m.i32.add(g(y), g(oy)), () => m.i32.add(g(x), g(ox)), fill)),
  ];
  const perSample = (s) => m.block(null, [
    f.set(oy, m.i32.load(0, 4, m.i32.add(offsets(), m.i32.shl(g(s), m.i32.const(3))))),
    f.set(ox, m.i32.load(4, 4, m.i32.add(offsets(), m.i32.shl(g(s), m.i32.const(3))))),
  ]);
  const code = imageLoops(f, { n: n(), c: c(), h: oh(), w: ow() }, body, [perSample]);
  m.addFunction(`crop_${kind}`, b.createType(P), b.none, f.vars, code);
}

function addNormalize(b, m) {
  const P = [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32];
  const f = new Fn(b, m, P);
  const [src, dst, n, c, plane, stats] = [0, 1, 2, 3, 4, 5].map((i) => () => f.get(i));
  const e = elem(b, m, "f32");
  const [s, ch, i, idx] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const [mean, std] = [f.local(b.f64), f.local(b.f64)];
  const g = (v) => f.get(v);
  const code = f.loop(s, n(), [
    f.loop(ch, c(), [
      f.set(mean, m.f64.load(0, 8, m.i32.add(stats(), m.i32.shl(g(ch), m.i32.const(4))))),
      f.set(std, m.f64.load(8, 8, m.i32.add(stats(), m.i32.shl(g(ch), m.i32.const(4))))),
      f.loop(i, plane(), [
        f.set(idx, flat(m, [g(s), c(), g(ch), plane(), g(i)])),
        e.store(dst(), g(idx), m.f64.div(m.f64.sub(e.load(src(), g(idx)), g(mean)), g(std))),
      ]),
    ]),
  ]);
  m.addFunction("normalize_f32", b.createType(P), b.none, f.vars, code);
}

function addToTensor(b, m) {
  const P = [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32];
  const f = new Fn(b, m, P);
  const [src, dst, n, c, h, w, hwc] = [0, 1, 2, 3, 4, 5, 6].map((i) => () => f.get(i));
  const u8 = elem(b, m, "u8");
  const f32 = elem(b, m, "f32");
  const g = (v) => f.get(v);
  const body = (s, ch, y, x) => {
    const chw = () => flat(m, [g(s), c(), g(ch), h(), g(y), w(), g(x)]);
    const hwcIdx = flat(m, [g(s), h(), g(y), w(), g(x), c(), g(ch)]);
    return [f32.store(dst(), chw(), m.f64.div(u8.load(src(), m.select(hwc(), hwcIdx, chw())), m.f64.const(255)))];
  };
  const code = imageLoops(f, { n: n(), c: c(), h: h(), w: w() }, body);
  m.addFunction("to_tensor_u8", b.createType(P), b.none, f.vars, code);
}

const EXPORTS = ["flip_f32", "flip_u8", "rotate_f32", "rotate_u8", "crop_f32", "crop_u8", "normalize_f32", "to_tensor_u8"];

/** The kernels' wasm binary. Deterministic: the same Binaryen version gives the same bytes. */
export async function buildAugmentWasm() {
  const b = (await import("binaryen")).default;
  const m = new b.Module();
  try {
    m.setFeatures(b.Features.MVP | b.Features.NontrappingFPToInt | b.Features.MutableGlobals | b.Features.SignExt);
    // No declared maximum, so the runtime's growable memory (created without one) is accepted.
    m.setMemory(1, -1, null, [], false, false, "0");
    m.addMemoryImport("0", "env", "memory");
    for (const kind of ["f32", "u8"]) {
      addFlip(b, m, kind);
      addRotate(b, m, kind);
      addCrop(b, m, kind);
    }
    addNormalize(b, m);
    addToTensor(b, m);
    for (const name of EXPORTS) m.addFunctionExport(name, name);
    if (!m.validate()) throw new Error("augment kernels: the generated module does not validate");
    b.setOptimizeLevel(2);
    b.setShrinkLevel(0);
    m.optimize();
    return new Uint8Array(m.emitBinary());
  } finally {
    m.dispose();
  }
}

/** The text of runtime/data/augment-wasm.ts for a binary. */
export function renderModuleFile(bytes) {
  const b64 = Buffer.from(bytes).toString("base64");
  const lines = b64.match(/.{1,100}/g) ?? [];
  return [
    "// GENERATED by scripts/build-augment-wasm.mjs (do not edit): the augmentation kernels' wasm, base64-encoded.",
    "// The kernels' ABI is documented at the top of that script; test/data/augment.test.ts checks this file is current.",
    "",
    `export const AUGMENT_WASM_EXPORTS = ${JSON.stringify(EXPORTS)} as const;`,
    "",
    "export const AUGMENT_WASM_BASE64 =",
    lines.map((l) => `  "${l}"`).join(" +\n") + ";",
    "",
  ].join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderModuleFile(await buildAugmentWasm());
  if (process.argv.includes("--check")) {
    const same = readFileSync(OUT, "utf8") === text;
    console.log(same ? "augment-wasm.ts is up to date" : "augment-wasm.ts is stale: run node scripts/build-augment-wasm.mjs");
    process.exit(same ? 0 : 1);
  }
  writeFileSync(OUT, text);
  console.log(`wrote ${OUT}`);
}
