// Codegen stage (WGSL): batched f32 matmul, tiled. A workgroup computes a tileM x tileN block of C, staging
// tileM x tileK of A and tileK x tileN of B in workgroup memory per step of k; each invocation keeps a
// regM x regN block of C in registers (unrolled scalars). Batch axes broadcast through aBcast/bBcast; transA /
// transB operands are read transposed while staging. The wasm packing scratch is not bound.
import type { ConvGather, MatmulKernel } from "../kernel.js";
import { wgslType } from "./values.js";
import type { HelperName } from "./prelude.js";
import { bindingElem, loadElem, roundTo, storeElem, type HalfMode } from "./half.js";
import { hornerOffset, indent, productOf, unflatten, type KernelShader } from "./shader.js";
import { wgslEpilogue } from "./matmul-epilogue.js";
import { flagCheck, withFlag } from "./finite.js";

export interface MatmulTile {
  /** Rows and columns of C per workgroup, and the k step staged in workgroup memory. */
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** Rows and columns of C per invocation. */
  readonly regM: number;
  readonly regN: number;
}

export const DEFAULT_TILE: MatmulTile = { m: 32, n: 32, k: 16, regM: 4, regN: 4 };

export function checkTile(t: MatmulTile): void {
  const ok = (v: number) => Number.isInteger(v) && v >= 1 && v <= 256;
  if (![t.m, t.n, t.k, t.regM, t.regN].every(ok) || t.m % t.regM !== 0 || t.n % t.regN !== 0) {
    throw new Error(`wgsl backend: bad matmul tile ${JSON.stringify(t)}: sizes are 1..256 and m, n are multiples of regM, regN`);
  }
  const invocations = (t.m / t.regM) * (t.n / t.regN);
  if (invocations > 1024) throw new Error(`wgsl backend: matmul tile ${JSON.stringify(t)} needs ${invocations} invocations per workgroup (at most 1024)`);
}

/** The k-loop body: load a column of A and a row of B registers, then the regM x regN multiply-adds. */
function innerProduct(t: MatmulTile): string[] {
  const out: string[] = [];
  for (let r = 0; r < t.regM; r++) out.push(`let av${r} = tileA[(ly * ${t.regM}u + ${r}u) * ${t.k}u + kk];`);
  for (let c = 0; c < t.regN; c++) out.push(`let bv${c} = tileB[kk * ${t.n}u + lx * ${t.regN}u + ${c}u];`);
  for (let r = 0; r < t.regM; r++) for (let c = 0; c < t.regN; c++) out.push(`acc${r}_${c} = acc${r}_${c} + av${r} * bv${c};`);
  return out;
}

/**
 * Cooperative, bounds-checked load of a rows x cols tile (zero outside the matrix) into workgroup memory.
 * Consecutive invocations walk the operand's memory order: along c normally, along r for a transposed operand.
 */
function stageTile(tile: string, load: (at: string) => string, rows: number, cols: number, wg: number, trans: boolean, inside: string, at: string, pre: readonly string[] = []): string[] {
  const [r, c] = trans ? [`e % ${rows}u`, `e / ${rows}u`] : [`e / ${cols}u`, `e % ${cols}u`];
  return [
    `for (var e = li; e < ${rows * cols}u; e = e + ${wg}u) {`,
    `  let r = ${r};`,
    `  let c = ${c};`,
    ...pre.map((l) => `  ${l}`),
    `  var v = 0.0f;`,
    `  if (${inside}) { v = ${load(at)}; }`,
    `  ${tile}[${trans ? `r * ${cols}u + c` : "e"}] = v;`,
    `}`,
  ];
}

/**
 * A convolution's patch element (kernel.ts ConvGather) of pixel row `row` (over all images) and column `k`: lets
 * ih, iw (i32, outside x in the padding) and ci, the index into lhs = x when inside.
 */
function convGather(cv: ConvGather, row: string, k: string): string[] {
  const { C, H, W, KH, KW, OH, OW } = cv;
  return [
    `let row = ${row};`,
    `let kq = ${k};`,
    `let img = row / ${OH * OW}u;`,
    `let pix = row % ${OH * OW}u;`,
    `let chan = kq / ${KH * KW}u;`,
    `let tap = kq % ${KH * KW}u;`,
    `let ih = i32((pix / ${OW}u) * ${cv.stride[0]}u + (tap / ${KW}u) * ${cv.dilation[0]}u) - ${cv.pad[0]};`,
    `let iw = i32((pix % ${OW}u) * ${cv.stride[1]}u + (tap % ${KW}u) * ${cv.dilation[1]}u) - ${cv.pad[1]};`,
    `let ci = ((img * ${C}u + chan) * ${H}u + u32(ih)) * ${W}u + u32(iw);`,
  ];
}

/**
 * Buffers (lhs, rhs, scratch: not bound, out); params bext_0..bext_{batchRank-1}, m, k, n, m0, m1 (rows computed).
 * f16/bf16 operands and outputs (half.ts; `mode` says how f16 is bound) are widened while staging; the sum is f32.
 * With `flag`, one more binding after out: every value stored to out is checked (finite.ts).
 */
export function renderMatmul(name: string, k: MatmulKernel, t: MatmulTile = DEFAULT_TILE, mode: HalfMode = "packed"): KernelShader {
  checkTile(t);
  if (k.dtype !== "f32" && k.dtype !== "f16" && k.dtype !== "bf16") {
    wgslType(k.dtype);
    throw new Error(`wgsl backend: matmul over ${k.dtype} is not supported`);
  }
  const br = k.batchRank;
  if (k.aBcast.length !== br || k.bBcast.length !== br) throw new Error(`wgsl backend: matmul bcast flags do not match batch rank ${br}`);
  const wx = t.n / t.regN, wy = t.m / t.regM, wg = wx * wy;
  const ta = k.transA === true, tb = k.transB === true;
  const swap = k.convOut === true;
  // A weight gradient (transA): A = patchesᵀ, per image over one batch axis (bz is the image) or over all pixels.
  const wgrad = k.aConv !== undefined && ta;
  // x may be stored f16/bf16 or rounded (mixed precision): loadA widens and rounds gathered elements as any others.
  if (k.aConv && ((wgrad ? br > 1 || swap || k.aBcast.some(Boolean) : br !== (swap ? 1 : 0)) || (swap && !tb))) throw new Error("wgsl backend: a convolution gather needs x as its left operand, and with convOut w transposed over one batch axis (compiler bug)");
  const bext = Array.from({ length: br }, (_, a) => `be${a}`);
  const z = Array.from({ length: br }, (_, a) => `z${a}`);
  const batchIndex = (bc: readonly boolean[]) => {
    const keep = bc.flatMap((b, a) => (b ? [] : [a]));
    return hornerOffset(keep.map((a) => z[a]!), keep.map((a) => bext[a]!));
  };
  const helpers = new Set<HelperName>();
  const use = (h: HelperName) => void helpers.add(h);
  // Operand storage and folded casts (the contract in kernel.ts): load, widen to f32, then round if asked.
  const aDtype = k.aDtype ?? k.dtype, bDtype = k.bDtype ?? k.dtype;
  const outDtype = k.epilogue?.out ?? k.dtype;
  const loadA = (at: string) => roundTo(k.aRound ?? "f32", loadElem(aDtype, mode, "lhs", at, use), use);
  const loadB = (at: string) => roundTo(k.bRound ?? "f32", loadElem(bDtype, mode, "rhs", at, use), use);
  /** The store of one finished element (packed halves race-free, half.ts). */
  const storeOut = (at: string, value: string): string => storeElem(outDtype, mode, "out", at, value, use).join(" ");
  // Fused elementwise consumers applied to each finished sum (matmul-epilogue.ts; A2's region).
  const epi = k.epilogue ? wgslEpilogue(k, mode, use, batchIndex) : null;
  const flag = k.flag ? flagCheck(outDtype) : null;
  const inX = (cv: ConvGather) => ` && u32(ih) < ${cv.H}u && u32(iw) < ${cv.W}u`;
  // The tiles of A and B: plain, A gathered from x (aConv), or with convOut A = w [O, K] (rhs) and B the patches
  // of image bz transposed, columns = pixels.
  const staged = (): string[] => {
    const cv = k.aConv;
    if (cv && swap) return [
      ...stageTile("tileA", loadB, t.m, t.k, wg, false, "row0 + r < m1 && k0 + c < K", "(row0 + r) * K + k0 + c"),
      ...stageTile("tileB", loadA, t.k, t.n, wg, false, `k0 + r < K && col0 + c < N${inX(cv)}`, "ci", convGather(cv, "bz * N + col0 + c", "k0 + r")),
    ];
    if (cv && wgrad) return [
      ...stageTile("tileA", loadA, t.m, t.k, wg, false, `row0 + r < m1 && k0 + c < K${inX(cv)}`, "ci", convGather(cv, "bz * K + k0 + c", "row0 + r")),
      ...stageTile("tileB", loadB, t.k, t.n, wg, tb, "k0 + r < K && col0 + c < N", tb ? "bBase + (col0 + c) * K + k0 + r" : "bBase + (k0 + r) * N + col0 + c"),
    ];
    return [
      ...(cv
        ? stageTile("tileA", loadA, t.m, t.k, wg, false, `row0 + r < m1 && k0 + c < K${inX(cv)}`, "ci", convGather(cv, "row0 + r", "k0 + c"))
        : stageTile("tileA", loadA, t.m, t.k, wg, ta, "row0 + r < m1 && k0 + c < K", ta ? "aBase + (k0 + c) * M + row0 + r" : "aBase + (row0 + r) * K + k0 + c")),
      ...stageTile("tileB", loadB, t.k, t.n, wg, tb, "k0 + r < K && col0 + c < N", tb ? "bBase + (col0 + c) * K + k0 + r" : "bBase + (k0 + r) * N + col0 + c"),
    ];
  };
  const regs = Array.from({ length: t.regM }, (_, r) => Array.from({ length: t.regN }, (_, c) => [r, c] as const)).flat();
  const tileBody = [
    `let row0 = m0 + ty * ${t.m}u;`,
    `let col0 = tx * ${t.n}u;`,
    ...regs.map(([r, c]) => `var acc${r}_${c} = 0.0f;`),
    `for (var k0 = 0u; k0 < K; k0 = k0 + ${t.k}u) {`,
    ...indent(staged()),
    `  workgroupBarrier();`,
    `  for (var kk = 0u; kk < ${t.k}u; kk = kk + 1u) {`,
    ...indent(innerProduct(t), 2),
    `  }`,
    // The tiles are overwritten by the next k step only after every invocation is done reading them.
    `  workgroupBarrier();`,
    `}`,
    ...regs.map(([r, c]) => {
      const gr = `row0 + ly * ${t.regM}u + ${r}u`, gc = `col0 + lx * ${t.regN}u + ${c}u`;
      const acc = `acc${r}_${c}`;
      const store = epi ? epi.store(gr, gc, acc, flag?.track) : [storeOut(`cBase + (${gr}) * N + ${gc}`, acc), ...(flag ? [flag.track(acc)] : [])].join(" ");
      return `if (${gr} < m1 && ${gc} < N) { ${store} }`;
    }),
  ];
  const body = [
    ...(epi?.consts ?? []),
    ...(flag ? [flag.decl] : []),
    ...bext.map((b, a) => `let ${b} = p.bext_${a};`),
    `let M = p.m;`,
    `let K = p.k;`,
    `let N = p.n;`,
    `let m0 = p.m0;`,
    `let m1 = min(p.m1, M);`,
    `let batch = ${productOf(bext)};`,
    `let tilesM = (select(0u, m1 - m0, m1 > m0) + ${t.m - 1}u) / ${t.m}u;`,
    `let tilesN = (N + ${t.n - 1}u) / ${t.n}u;`,
    `let lx = lid.x;`,
    `let ly = lid.y;`,
    `let li = lid.y * ${wx}u + lid.x;`,
    `for (var bz = wid.z; bz < batch; bz = bz + nwg.z) {`,
    ...indent(unflatten("bz", z, bext, "q")),
    `  let aBase = (${batchIndex(k.aBcast)}) * M * K;`,
    `  let bBase = (${batchIndex(k.bBcast)}) * K * N;`,
    `  let cBase = bz * M * N;`,
    ...indent(epi?.perBatch ?? []),
    `  for (var ty = wid.y; ty < tilesM; ty = ty + nwg.y) {`,
    `    for (var tx = wid.x; tx < tilesN; tx = tx + nwg.x) {`,
    ...indent(tileBody, 3),
    `    }`,
    `  }`,
    `}`,
    ...(flag ? [flag.clear] : []),
  ];
  const buffers: KernelShader["buffers"] = [{ name: "lhs", elem: bindingElem(aDtype, mode), write: false }, { name: "rhs", elem: bindingElem(bDtype, mode), write: false }, null, ...(epi?.buffers ?? []), { name: "out", elem: bindingElem(outDtype, mode, "scatter"), write: true }];
  const bc = (flags: readonly boolean[]) => (flags.some(Boolean) ? ` (broadcast on batch axes ${flags.flatMap((b, a) => (b ? [a] : [])).join(", ")})` : "");
  return {
    name,
    about: [
      `Kiln kernel ${name}: matmul ${aDtype}${k.aRound ? ` (rounded to ${k.aRound})` : ""} x ${bDtype}${k.bRound ? ` (rounded to ${k.bRound})` : ""} -> ${outDtype}, f32 sums, batch rank ${br}: out[batch, M, N] = ${ta ? "transpose(lhs[batch, K, M])" : "lhs[batch, M, K]"}${bc(k.aBcast)} @ ${tb ? "transpose(rhs[batch, N, K])" : "rhs[batch, K, N]"}${bc(k.bBcast)}, rows [m0, m1)`,
      `tile ${t.m}x${t.n}x${t.k} per workgroup, ${t.regM}x${t.regN} per invocation`,
      ...(epi ? [epi.about] : []),
      ...(k.aConv ? [`lhs is a convolution's input x, the left operand its patches${wgrad ? " transposed" : ""} (${JSON.stringify(k.aConv)})`] : []),
      ...(flag ? ["clears flag if a value stored to out is not finite"] : []),
    ],
    params: [...bext.map((_, a) => `bext_${a}`), "m", "k", "n", "m0", "m1"],
    buffers: k.flag ? withFlag(name, buffers) : buffers,
    helpers,
    decls: [`var<workgroup> tileA: array<f32, ${t.m * t.k}>;`, `var<workgroup> tileB: array<f32, ${t.k * t.n}>;`],
    workgroup: [wx, wy, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: (t.m * t.k + t.k * t.n) * 4,
    grid: [{ ints: [br + 2], per: t.n }, { ints: [br], per: t.m }, { ints: bext.map((_, a) => a), per: 1 }],
  };
}
