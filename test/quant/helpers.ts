// Test helpers for quantization: compile a .kiln source and load it on the wasm backend.
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "../../runtime/module.js";

const builds = new Map<string, ReturnType<typeof buildWasm>>();

/** Builds once per source (Binaryen builds dominate these tests' time). */
export function build(source: string, file = "q.kiln"): ReturnType<typeof buildWasm> {
  let b = builds.get(source);
  if (!b) {
    const r = compileToIR(source, file);
    if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { [file]: source }));
    builds.set(source, (b = buildWasm(r.ir, "q")));
  }
  return b;
}

export async function compileAndLoad(source: string, opts: LoadOptions = {}, file = "q.kiln"): Promise<KilnModule> {
  const b = await build(source, file);
  return loadKilnModule(b.manifest, b.wasm, opts);
}

/** Deterministic values in [-1, 1). */
export function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}
