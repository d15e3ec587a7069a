// Codegen stage (WGSL): strided copy kernels (permute, broadcast_to, slice, concat parts) and iota. Elements
// are moved as raw 32-bit words (u32), so a copy is bit-exact for every dtype the runtime stores.
import type { CopyKernel, IotaKernel } from "../kernel.js";
import { EW_WORKGROUP } from "./elementwise.js";
import { productOf, unflatten, type KernelShader } from "./shader.js";

const W = EW_WORKGROUP;
const LINEAR_BUILTINS = ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"];
const ONE = { ints: [] as number[], per: 1 };

/** Bindings (inp, out); params in_off, out_off, ext_0.., in_stride_0.., out_stride_0.. (in elements). */
export function renderCopy(name: string, k: CopyKernel): KernelShader {
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
    `  out[${sum("p.out_off", "out_stride")}] = inp[${sum("p.in_off", "in_stride")}];`,
    `}`,
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: strided copy of ${k.dtype} (layout ops: permute, broadcast_to, slice, concat), rank ${r}`,
      `out[out_off + sum(i_a * out_stride_a)] = inp[in_off + sum(i_a * in_stride_a)] for every index i in ext`,
    ],
    params: ["in_off", "out_off", ...axes.map((a) => `ext_${a}`), ...axes.map((a) => `in_stride_${a}`), ...axes.map((a) => `out_stride_${a}`)],
    buffers: [{ name: "inp", elem: "u32", write: false }, { name: "out", elem: "u32", write: true }],
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
