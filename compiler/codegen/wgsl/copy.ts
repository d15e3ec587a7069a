// Codegen stage (WGSL): strided copy kernels (permute, broadcast_to, slice, concat parts) and iota. Elements
// are moved as raw bits (32-bit words; 16-bit halves for f16/bf16), so a copy is bit-exact for every dtype.
import type { CopyKernel, IotaKernel } from "../kernel.js";
import { isPacked16, type HalfMode } from "./half.js";
import { EW_WORKGROUP } from "./elementwise.js";
import { productOf, unflatten, type KernelShader } from "./shader.js";

const W = EW_WORKGROUP;
const LINEAR_BUILTINS = ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"];
const ONE = { ints: [] as number[], per: 1 };

/**
 * The statement moving element `src` of inp to element `dst` of out. Packed halves (half.ts): the output may be
 * any strided part of a tensor (a concat part at an odd offset), so halves go in with atomicAnd/atomicOr, which
 * touch only this element's 16 bits. Native f16 copies f16 values (no arithmetic, so the bits are kept).
 */
function moveElement(k: CopyKernel, mode: HalfMode, dst: string, src: string): string[] {
  if (!isPacked16(k.dtype, mode)) return [`out[${dst}] = inp[${src}];`];
  return [
    `let s = ${src};`,
    `let d = ${dst};`,
    `let bits = (inp[s >> 1u] >> ((s & 1u) * 16u)) & 0xffffu;`,
    `let sh = (d & 1u) * 16u;`,
    `atomicAnd(&out[d >> 1u], ~(0xffffu << sh));`,
    `atomicOr(&out[d >> 1u], bits << sh);`,
  ];
}

/** Bindings (inp, out); params in_off, out_off, ext_0.., in_stride_0.., out_stride_0.. (in elements). */
export function renderCopy(name: string, k: CopyKernel, mode: HalfMode = "packed"): KernelShader {
  const r = k.rank;
  const axes = Array.from({ length: r }, (_, a) => a);
  const exts = axes.map((a) => `e${a}`);
  const idx = axes.map((a) => `i${a}`);
  const sum = (base: string, stride: string) => [base, ...axes.map((a) => `i${a} * p.${stride}_${a}`)].join(" + ");
  const body = [
    ...exts.map((e, a) => `let ${e} = p.ext_${a};`),
    `let n = ${productOf(exts)};`,
    `for (var i = gid.x; i < n; i = i + nwg.x * ${W}u) {`,
    ...unflatten("i", idx, exts, "q").map((l) => `  ${l}`),
    ...moveElement(k, mode, sum("p.out_off", "out_stride"), sum("p.in_off", "in_stride")).map((l) => `  ${l}`),
    `}`,
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: strided copy of ${k.dtype} (layout ops: permute, broadcast_to, slice, concat), rank ${r}`,
      `out[out_off + sum(i_a * out_stride_a)] = inp[in_off + sum(i_a * in_stride_a)] for every index i in ext`,
    ],
    params: ["in_off", "out_off", ...axes.map((a) => `ext_${a}`), ...axes.map((a) => `in_stride_${a}`), ...axes.map((a) => `out_stride_${a}`)],
    buffers: k.dtype === "f16" && mode === "native"
      ? [{ name: "inp", elem: "f16", write: false }, { name: "out", elem: "f16", write: true }]
      : [{ name: "inp", elem: "u32", write: false }, { name: "out", elem: isPacked16(k.dtype, mode) ? "atomic<u32>" : "u32", write: true }],
    helpers: new Set(),
    workgroup: [W, 1, 1],
    builtins: LINEAR_BUILTINS,
    body,
    workgroupBytes: 0,
    grid: [{ ints: axes.map((a) => 2 + a), per: W }, ONE, ONE],
  };
}

/** Bindings (out); params n: out[i] = i for i < n. */
export function renderIota(name: string, _k: IotaKernel): KernelShader {
  return {
    name,
    about: [`Kiln kernel ${name}: iota, out[i] = i (i32)`],
    params: ["n"],
    buffers: [{ name: "out", elem: "i32", write: true }],
    helpers: new Set(),
    workgroup: [W, 1, 1],
    builtins: LINEAR_BUILTINS,
    body: [`for (var i = gid.x; i < p.n; i = i + nwg.x * ${W}u) {`, `  out[i] = i32(i);`, `}`],
    workgroupBytes: 0,
    grid: [{ ints: [0], per: W }, ONE, ONE],
  };
}
