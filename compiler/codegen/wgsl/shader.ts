// Codegen stage (WGSL): the skeleton every kernel shares — a header comment naming the kernel and its ops, the
// uniform block of integer arguments (binding 0), named storage buffers (bindings 1.., inputs then output, or
// one `pack` of all inputs), the helpers it uses, and one compute entry point `main`.
import type { WgslGridAxis, WgslKernelManifest } from "../../../runtime/manifest.js";
import { renderHelpers, type HelperName } from "./prelude.js";
import type { StorageElem } from "./half.js";

export interface StorageBinding {
  readonly name: string;
  /**
   * Element type of the runtime-sized array (f16 needs shader-f16; atomic<u32> holds packed halves, half.ts;
   * atomic<i32> is the all_finite flag, finite.ts).
   */
  readonly elem: StorageElem;
  readonly write: boolean;
}

export interface KernelShader {
  /** Kernel name (the manifest's and the wasm export's). */
  readonly name: string;
  /** Header lines: what the kernel computes, its ops and dtypes. */
  readonly about: readonly string[];
  /** Names of the integer arguments, in calling-convention order (fields of the uniform struct, all u32). */
  readonly params: readonly string[];
  /**
   * One per buffer of the calling convention; null for one the shader does not bind; "packed" for an input read
   * from the shared `pack` binding at word offset `p.pack_<j>` (j counts the packed buffers).
   */
  readonly buffers: readonly (StorageBinding | null | "packed")[];
  readonly helpers: ReadonlySet<HelperName>;
  /** Module-scope declarations (workgroup arrays, constants). */
  readonly decls?: readonly string[];
  readonly workgroup: readonly [number, number, number];
  /** Entry point parameters, e.g. "@builtin(global_invocation_id) gid: vec3<u32>". */
  readonly builtins: readonly string[];
  /** Statements of `main`, already indented relative to it. */
  readonly body: readonly string[];
  readonly workgroupBytes: number;
  /** Workgroups along x, y, z as functions of the integer arguments (the shader loops past the device limit). */
  readonly grid: readonly [WgslGridAxis, WgslGridAxis, WgslGridAxis];
}

export const ONE_GROUP: WgslGridAxis = { ints: [], per: 1 };

/**
 * One invocation per output pixel of `planes` planes of `pixels` each (params 0 and 1), grid-stride past the
 * device limit: the shader's workgroup, builtins and grid, and the loop head binding e (flat index), pl (plane) and
 * r (pixel in the plane), all u32; the caller's lines follow it and close the loop.
 */
export function planePixelLoop(pixels: number, wg: number): Pick<KernelShader, "workgroup" | "builtins" | "grid"> & { head: string[] } {
  return {
    workgroup: [wg, 1, 1],
    builtins: ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    grid: [{ ints: [0, 1], per: wg }, ONE_GROUP, ONE_GROUP],
    head: [
      `let total = p.planes * ${pixels}u;`,
      `for (var e = gid.x; e < total; e = e + nwg.x * ${wg}u) {`,
      `  let pl = e / ${pixels}u;`,
      `  let r = e % ${pixels}u;`,
    ],
  };
}

/** The text of one kernel's shader module. */
export function renderShader(k: KernelShader): string {
  const lines: string[] = [...k.about.map((l) => `// ${l}`), ""];
  // The native 16-bit variant (half.ts); a directive must precede every declaration.
  if (k.buffers.some((b) => b !== null && b !== "packed" && b.elem === "f16")) lines.push("enable f16;", "");
  // WGSL has no empty structs: a kernel without integer arguments still gets one (unused) field.
  const packs = k.buffers.filter((b) => b === "packed").map((_, j) => `pack_${j}`);
  const fields = [...k.params, ...packs];
  lines.push("struct Params {", ...(fields.length ? fields : ["unused"]).map((f) => `  ${f}: u32,`), "}", "");
  lines.push("@group(0) @binding(0) var<uniform> p: Params;");
  let binding = 1;
  let packBound = false;
  for (const b of k.buffers) {
    if (b === null || (b === "packed" && packBound)) continue;
    if (b === "packed") {
      packBound = true;
      lines.push(`@group(0) @binding(${binding++}) var<storage, read> pack: array<u32>;`);
    } else {
      lines.push(`@group(0) @binding(${binding++}) var<storage, ${b.write ? "read_write" : "read"}> ${b.name}: array<${b.elem}>;`);
    }
  }
  lines.push("");
  for (const h of renderHelpers(k.helpers)) lines.push(h, "");
  if (k.decls?.length) lines.push(...k.decls, "");
  const [x, y, z] = k.workgroup;
  lines.push(`@compute @workgroup_size(${x}, ${y}, ${z})`);
  lines.push(`fn main(${k.builtins.join(", ")}) {`);
  lines.push(...k.body.map((l) => (l ? `  ${l}` : l)));
  lines.push("}");
  return lines.join("\n") + "\n";
}

export function kernelMeta(k: KernelShader): WgslKernelManifest {
  return {
    buffers: k.buffers.map((b) => (b === null ? "none" : b === "packed" ? "pack" : b.write ? "write" : "read")),
    ints: k.params.length,
    workgroupSize: k.workgroup[0] * k.workgroup[1] * k.workgroup[2],
    workgroupBytes: k.workgroupBytes,
    grid: [...k.grid] as [WgslGridAxis, WgslGridAxis, WgslGridAxis],
  };
}

/** Indents a block of lines by one level. */
export function indent(lines: readonly string[], levels = 1): string[] {
  const pad = "  ".repeat(levels);
  return lines.map((l) => (l ? pad + l : l));
}

/** `a * b * c` over u32 expressions ("1u" when empty). */
export function productOf(terms: readonly string[]): string {
  return terms.length ? terms.join(" * ") : "1u";
}

/**
 * Statements splitting the linear index `idx` into per-axis indices named by `names` (outermost first) over the
 * extents `exts`; the outermost index needs no modulo since idx < product(exts).
 */
export function unflatten(idx: string, names: readonly string[], exts: readonly string[], scratch: string): string[] {
  if (names.length === 0) return [];
  if (names.length === 1) return [`let ${names[0]} = ${idx};`];
  const out = [`var ${scratch} = ${idx};`];
  for (let a = names.length - 1; a >= 1; a--) {
    out.push(`let ${names[a]} = ${scratch} % ${exts[a]};`);
    out.push(`${scratch} = ${scratch} / ${exts[a]};`);
  }
  out.push(`let ${names[0]} = ${scratch};`);
  return out;
}

/** Horner form of a row-major offset: ((i0 * e1 + i1) * e2 + i2) over the given axes ("0u" when none). */
export function hornerOffset(idx: readonly string[], exts: readonly string[]): string {
  if (idx.length === 0) return "0u";
  let s = idx[0]!;
  for (let a = 1; a < idx.length; a++) s = `${a === 1 ? s : `(${s})`} * ${exts[a]} + ${idx[a]}`;
  return s;
}
