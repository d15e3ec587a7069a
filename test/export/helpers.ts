// Test helpers for kiln export: the CLI in-process, a compiled module with seeded weights saved as safetensors,
// seeded inputs, and Debian's python3 (torch, onnx) when present: required under CI (KILN_REQUIRE_PYTORCH=1).
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { main } from "../../compiler/cli/main.js";
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";

export async function kiln(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

export const tmp = () => mkdtempSync(join(tmpdir(), "kiln-export-"));

export function irOfFile(file: string): IRModule {
  const r = compileToIR(readFileSync(file, "utf8"), file);
  if (!r.ir) throw new Error(`${file} does not compile`);
  return r.ir;
}

/** The example compiled for wasm with params seeded by `seed`, and those params written as safetensors. */
export async function moduleWithWeights(file: string, seed: number, dir: string): Promise<{ mod: KilnModule; weights: string }> {
  const b = await buildWasm(irOfFile(file), "m");
  const mod = await loadKilnModule(b.manifest, b.wasm, { seed });
  const weights = join(dir, "w.safetensors");
  const all = mod.paramsByName();
  const model = Object.fromEntries(Object.entries(all).filter(([k]) => mod.manifest.params.find((p) => p.name === k)?.role !== "state"));
  writeFileSync(weights, serializeSafetensors(model));
  return { mod, weights };
}

/** f32 values in [-1, 1) from a 32-bit LCG (cheap, reproducible). */
export function lcg(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => Math.fround((((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1) * scale));
}

export function labels(n: number, classes: number, seed: number): Int32Array {
  return Int32Array.from(lcg(n, seed), (v) => Math.floor((v + 1) / 2 * classes) % classes);
}

/** Largest |a - b| / (atol + rtol |b|); <= 1 means within tolerance. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-4, atol = 1e-5): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return worst;
}

export const tensorOf = (dtype: "f32" | "i32", shape: number[], data: Float32Array | Int32Array) => new Tensor(dtype, shape, data);

export const PY = "/usr/bin/python3";

/**
 * Whether Debian's python3 has `modules`; when not, the suite skips and prints why, unless CI installed them
 * (KILN_REQUIRE_PYTORCH=1), where it fails.
 */
export function pythonWith(suite: string, modules: string[]): boolean {
  const r = spawnSync(PY, ["-c", modules.map((m) => `import ${m}`).join("; ")], { encoding: "utf8" });
  if (r.status === 0) return true;
  const reason = r.error ? `${PY} not found` : `${PY} lacks ${modules.join("/")}: ${(r.stderr || "").trim().split("\n").pop()}`;
  if (process.env.KILN_REQUIRE_PYTORCH === "1") throw new Error(`${suite}: KILN_REQUIRE_PYTORCH=1 but ${reason}`);
  console.warn(`[export] SKIPPING ${suite}: ${reason}`);
  return false;
}

export function python(script: string, args: string[] = [], opts: { cwd?: string; env?: Record<string, string>; timeout?: number } = {}) {
  const r = spawnSync(PY, ["-c", script, ...args], { encoding: "utf8", cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 300_000 });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
