// Codegen stage (WGSL): the int8 matmul (kernel kind "qmatmul"). A 16x16 workgroup owns a 16x16 tile of C: it
// finds each row's quantization range, quantizes 64-wide k slices of A into packed i8 words in workgroup memory
// next to the weight words, and accumulates dot4I8Packed products (or their emulation) in i32.
import type { QPacking } from "../../../runtime/manifest.js";
import type { QMatmulKernel } from "../kernel.js";
import { ONE_GROUP, indent, type KernelShader, type StorageBinding } from "./shader.js";

/** Weights as the WGSL kernels read them: one u32 word per 4 consecutive k of a column (column-major). */
export const WGSL_QPACKING: QPacking = { nr: 1, group: 4, elem: "i8" };

const T = 16;

export interface QMatmulWgslOptions {
  /**
   * Use the builtin dot4I8Packed (WGSL language feature packed_4x8_integer_dot_product, see
   * navigator.gpu.wgslLanguageFeatures). Default false: the portable emulation with shifts, same results.
   */
  readonly dot4?: boolean;
}

function dotHelper(dot4: boolean): string[] {
  if (dot4) return ["fn kiln_dot4i8(a: u32, b: u32) -> i32 {", "  return dot4I8Packed(a, b);", "}"];
  return [
    "// dot4I8Packed without the packed_4x8_integer_dot_product language feature: sign-extend each byte.",
    "fn kiln_dot4i8(a: u32, b: u32) -> i32 {",
    "  let x = vec4<i32>(bitcast<i32>(a << 24u), bitcast<i32>(a << 16u), bitcast<i32>(a << 8u), bitcast<i32>(a)) >> vec4<u32>(24u);",
    "  let y = vec4<i32>(bitcast<i32>(b << 24u), bitcast<i32>(b << 16u), bitcast<i32>(b << 8u), bitcast<i32>(b)) >> vec4<u32>(24u);",
    "  return dot(x, y);",
    "}",
  ];
}

/** Buffers (a, w, qp, [bias,] scratch: not bound, out); params m, k, n, m0, m1 (rows computed). */
export function renderQMatmul(name: string, k: QMatmulKernel, opts: QMatmulWgslOptions = {}): KernelShader {
  if (k.output === "i32" && (k.bias || k.relu)) throw new Error("wgsl backend: an i32 qmatmul output takes no bias or relu (compiler bug)");
  const f32In = k.input !== "q8";
  const buffers: (StorageBinding | null)[] = [
    { name: "a", elem: f32In ? "f32" : "i32", write: false },
    { name: "w", elem: "u32", write: false },
    { name: "qp", elem: "f32", write: false },
    ...(k.bias ? [{ name: "bias", elem: "f32" as const, write: false }] : []),
    null,
    { name: "out", elem: k.output === "f32" ? "f32" : "i32", write: true },
  ];
  // Row ranges: dynamic rows get their own scale and zero point (reduced over the 16 lanes of the row).
  const rowPhase = !f32In ? [] : [
    `var mn = 0.0f;`,
    `var mx = 0.0f;`,
    `var bad = 0u;`,
    `if (row < m1) {`,
    `  for (var kk = lx; kk < K; kk = kk + ${T}u) {`,
    `    let v = a[row * K + kk];`,
    `    let bits = bitcast<u32>(v) & 0x7fffffffu;`,
    // A NaN (or, for a dynamic range, an infinity) makes the whole row NaN, as on wasm.
    `    if (bits > 0x7f800000u${k.input === "dynamic" ? " || bits == 0x7f800000u" : ""}) { bad = 1u; }`,
    `    mn = min(mn, v);`,
    `    mx = max(mx, v);`,
    `  }`,
    `}`,
    `redMin[ly * ${T}u + lx] = mn;`,
    `redMax[ly * ${T}u + lx] = mx;`,
    `redBad[ly * ${T}u + lx] = bad;`,
    `workgroupBarrier();`,
    `if (lx == 0u) {`,
    `  var lo = 0.0f;`,
    `  var hi = 0.0f;`,
    `  var anyBad = 0u;`,
    `  for (var j = 0u; j < ${T}u; j = j + 1u) {`,
    `    lo = min(lo, redMin[ly * ${T}u + j]);`,
    `    hi = max(hi, redMax[ly * ${T}u + j]);`,
    `    anyBad = anyBad | redBad[ly * ${T}u + j];`,
    `  }`,
    ...(k.input === "dynamic"
      ? [
        `  var sc = (hi - lo) / 255.0f;`,
        `  if (sc == 0.0f) { sc = 1.0f; }`,
        `  rowScale[ly] = sc;`,
        `  rowZp[ly] = round(clamp(-lo / sc, 0.0f, 255.0f));`,
      ]
      : [`  rowScale[ly] = qp[0];`, `  rowZp[ly] = qp[1];`]),
    `  rowBad[ly] = anyBad;`,
    `}`,
    `workgroupBarrier();`,
  ];
  const sc = f32In ? `rowScale[ly]` : `qp[0]`;
  const zp = f32In ? `rowZp[ly]` : `qp[1]`;
  const quant = f32In
    ? [`q = i32(clamp(round(a[row * K + kk] / ${sc}) + ${zp}, 0.0f, 255.0f));`]
    : [`q = a[row * K + kk];`];
  const epilogue = [
    `if (row < m1 && col < N) {`,
    // Packed A held q - 128: add 128 - zero point times the column's weight sum back.
    `  let tot = acc + (128i - i32(${zp})) * i32(qp[CS + col]);`,
    ...(k.output === "i32"
      ? [`  out[row * N + col] = tot;`]
      : [
        `  var y = f32(tot) * (${sc} * qp[4u + col]);`,
        ...(k.bias ? [`  y = y + bias[col];`] : []),
        ...(k.relu ? [`  y = max(y, 0.0f);`] : []),
        // Only f32 inputs can carry NaN (a u8 input cannot), and only their kernels declare kiln_nan.
        ...(k.output === "f32"
          ? [...(f32In ? [`  if (rowBad[ly] != 0u) { y = kiln_nan(); }`] : []), `  out[row * N + col] = y;`]
          : [
            `  var qo = i32(clamp(round(y / qp[2]) + qp[3], 0.0f, 255.0f));`,
            ...(f32In ? [`  if (rowBad[ly] != 0u) { qo = 0i; }`] : []),
            `  out[row * N + col] = qo;`,
          ]),
      ]),
    `}`,
  ];
  const tile = [
    `let row = m0 + ty * ${T}u + ly;`,
    `let col = tx * ${T}u + lx;`,
    ...rowPhase,
    `var acc = 0i;`,
    `for (var k0 = 0u; k0 < K4; k0 = k0 + ${T}u) {`,
    `  let wk = k0 + lx;`,
    `  var word = 0u;`,
    `  if (row < m1 && wk < K4) {`,
    `    for (var t = 0u; t < 4u; t = t + 1u) {`,
    `      let kk = wk * 4u + t;`,
    `      var q = 128i;`,
    `      if (kk < K) {`,
    ...indent(quant, 4),
    `      }`,
    `      word = word | ((bitcast<u32>(q - 128i) & 0xffu) << (8u * t));`,
    `    }`,
    `  }`,
    `  tileA[ly * ${T}u + lx] = word;`,
    `  let bc = tx * ${T}u + ly;`,
    `  var bw = 0u;`,
    `  if (bc < N && wk < K4) { bw = w[bc * K4 + wk]; }`,
    `  tileB[ly * ${T}u + lx] = bw;`,
    `  workgroupBarrier();`,
    `  for (var j = 0u; j < ${T}u; j = j + 1u) {`,
    `    acc = acc + kiln_dot4i8(tileA[ly * ${T}u + j], tileB[lx * ${T}u + j]);`,
    `  }`,
    `  workgroupBarrier();`,
    `}`,
    ...epilogue,
  ];
  const body = [
    `let M = p.m;`,
    `let K = p.k;`,
    `let N = p.n;`,
    `let m0 = p.m0;`,
    `let m1 = min(p.m1, M);`,
    `let K4 = (K + 3u) / 4u;`,
    `let CS = 4u + ((N + 15u) / 16u) * 16u;`,
    `let lx = lid.x;`,
    `let ly = lid.y;`,
    `let tilesM = (select(0u, m1 - m0, m1 > m0) + ${T - 1}u) / ${T}u;`,
    `let tilesN = (N + ${T - 1}u) / ${T}u;`,
    `for (var ty = wid.y; ty < tilesM; ty = ty + nwg.y) {`,
    `  for (var tx = wid.x; tx < tilesN; tx = tx + nwg.x) {`,
    ...indent(tile, 2),
    `  }`,
    `}`,
  ];
  const decls = [
    ...dotHelper(opts.dot4 === true),
    "",
    `var<workgroup> tileA: array<u32, ${T * T}>;`,
    `var<workgroup> tileB: array<u32, ${T * T}>;`,
    ...(f32In
      ? [
        `var<workgroup> redMin: array<f32, ${T * T}>;`,
        `var<workgroup> redMax: array<f32, ${T * T}>;`,
        `var<workgroup> redBad: array<u32, ${T * T}>;`,
        `var<workgroup> rowScale: array<f32, ${T}>;`,
        `var<workgroup> rowZp: array<f32, ${T}>;`,
        `var<workgroup> rowBad: array<u32, ${T}>;`,
      ]
      : []),
  ];
  const io = `${k.input === "dynamic" ? "f32 rows quantized to u8 per row at run time" : k.input === "static" ? "f32 quantized with the calibrated scale qp[0], zero point qp[1]" : "u8 (one per word) with scale qp[0], zero point qp[1]"}`;
  return {
    name,
    about: [
      `Kiln kernel ${name}: int8 matmul, out[M, N] = a[M, K] @ dequant(w), rows [m0, m1); a: ${io}`,
      `w: i8 weights, 4 per u32, column-major [N, ceil(K / 4)]; qp: scales and column sums (runtime/manifest.ts qpLayout)`,
      `output ${k.output}${k.bias ? " + bias" : ""}${k.relu ? ", relu" : ""}; ${opts.dot4 ? "dot4I8Packed" : "emulated dot4I8Packed"}`,
    ],
    params: ["m", "k", "n", "m0", "m1"],
    buffers,
    helpers: new Set(f32In && k.output !== "i32" ? ["nan" as const] : []),
    decls,
    workgroup: [T, T, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: 4 * (2 * T * T + (f32In ? 3 * T * T + 3 * T : 0)),
    grid: [{ ints: [2], per: T }, { ints: [0], per: T }, ONE_GROUP],
  };
}
