// Codegen stage (WGSL): row gather and scatter-add kernels (kernel.ts: gather, scatter_add). gather moves 32-bit
// words, one invocation per output element; scatter_add gives each invocation one column and walks the ids in
// order, so no two invocations write the same element (WGSL has no float atomics) and the sums are summed in
// the same order as on wasm.
import type { GatherKernel, ScatterAddKernel } from "../kernel.js";
import { EW_WORKGROUP } from "./elementwise.js";
import type { KernelShader } from "./shader.js";

const W = EW_WORKGROUP;
const BUILTINS = ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"];
const ONE = { ints: [] as number[], per: 1 };

/** Bindings (table, ids, out); params rows, n, len. */
export function renderGather(name: string, k: GatherKernel): KernelShader {
  if (k.dtype === "f16" || k.dtype === "bf16" || k.dtype === "u8" || k.dtype === "i8" || k.dtype === "f64") {
    throw new Error(`WGSL backend: gather of ${k.dtype} tables is not supported (32-bit dtypes only)`);
  }
  return {
    name,
    about: [`Kiln kernel ${name}: gather rows of a ${k.dtype} table`, "out[j * len + c] = table[ids[j] * len + c], or 0 when ids[j] is outside [0, rows)"],
    params: ["rows", "n", "len"],
    buffers: [{ name: "table", elem: "u32", write: false }, { name: "ids", elem: "i32", write: false }, { name: "out", elem: "u32", write: true }],
    helpers: new Set(),
    workgroup: [W, 1, 1],
    builtins: BUILTINS,
    body: [
      `let total = p.n * p.len;`,
      `for (var e = gid.x; e < total; e = e + nwg.x * ${W}u) {`,
      `  let j = e / p.len;`,
      `  let id = ids[j];`,
      `  if (id >= 0 && u32(id) < p.rows) {`,
      `    out[e] = table[u32(id) * p.len + (e - j * p.len)];`,
      `  } else {`,
      `    out[e] = 0u;`,
      `  }`,
      `}`,
    ],
    workgroupBytes: 0,
    grid: [{ ints: [1, 2], per: W }, ONE, ONE],
  };
}

/** Bindings (ids, src, out); params rows, n, len; f32. */
export function renderScatterAdd(name: string, _k: ScatterAddKernel): KernelShader {
  return {
    name,
    about: [`Kiln kernel ${name}: scatter-add of f32 rows`, "out = 0; out[ids[j] * len + c] += src[j * len + c] for ids[j] in [0, rows); one column per invocation"],
    params: ["rows", "n", "len"],
    buffers: [{ name: "ids", elem: "i32", write: false }, { name: "src", elem: "f32", write: false }, { name: "out", elem: "f32", write: true }],
    helpers: new Set(),
    workgroup: [W, 1, 1],
    builtins: BUILTINS,
    body: [
      `for (var c = gid.x; c < p.len; c = c + nwg.x * ${W}u) {`,
      `  for (var r = 0u; r < p.rows; r = r + 1u) {`,
      `    out[r * p.len + c] = 0.0;`,
      `  }`,
      `  for (var j = 0u; j < p.n; j = j + 1u) {`,
      `    let id = ids[j];`,
      `    if (id >= 0 && u32(id) < p.rows) {`,
      `      let o = u32(id) * p.len + c;`,
      `      out[o] = out[o] + src[j * p.len + c];`,
      `    }`,
      `  }`,
      `}`,
    ],
    workgroupBytes: 0,
    grid: [{ ints: [2], per: W }, ONE, ONE],
  };
}
