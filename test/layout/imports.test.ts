// Keeps docs/architecture.md's folder map true: which folders each folder may import, nothing under runtime/
// importing compiler/, and no import cycles (type-only imports included: a cycle of types is still a knot).
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${e}`;
    if (statSync(join(ROOT, rel)).isDirectory()) sources(rel, out);
    else if (e.endsWith(".ts") && !e.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/** file -> the repo-relative .ts files it imports (static, dynamic and type-only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of [...sources("compiler"), ...sources("runtime")]) {
    const text = readFileSync(join(ROOT, f), "utf8");
    const deps: string[] = [];
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g)) {
      deps.push(posix.normalize(posix.join(posix.dirname(f), m[1]!)).replace(/\.js$/, ".ts"));
    }
    graph.set(f, deps);
  }
  return graph;
}

/**
 * The folder a file belongs to for the map's rules: its first two path segments (compiler/lower, runtime/wasm), but
 * the ONNX importer (compiler/frontend/onnx) is its own row: it reads the schema the exporter shares.
 */
function area(file: string): string {
  const parts = file.split("/");
  if (file.startsWith("compiler/frontend/onnx/")) return "compiler/frontend/onnx";
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : `${parts[0]}/(root)`;
}

// What each area may import besides itself; mirrors the folder map at the top of docs/architecture.md.
const RT_CORE = "runtime/(root)";
const ALLOWED: Record<string, string[]> = {
  "runtime/(root)": ["runtime/wasm", "runtime/webgpu", "runtime/data", "runtime/quantize", "runtime/train", "runtime/parallel"],
  "runtime/wasm": [RT_CORE],
  "runtime/webgpu": [RT_CORE, "runtime/wasm", "runtime/quantize"],
  "runtime/data": [RT_CORE],
  "runtime/quantize": [RT_CORE, "runtime/wasm", "runtime/webgpu", "runtime/data"],
  "runtime/train": [RT_CORE, "runtime/wasm", "runtime/webgpu", "runtime/data"],
  "runtime/parallel": [RT_CORE, "runtime/wasm", "runtime/data", "runtime/train"],
  "compiler/(root)": ["compiler/frontend", "compiler/lower", "compiler/ir", "compiler/ops", "compiler/passes", "compiler/codegen", "compiler/emit", RT_CORE, "runtime/wasm"],
  "compiler/frontend": ["compiler/(root)"],
  "compiler/frontend/onnx": ["compiler/(root)", "compiler/export", RT_CORE],
  "compiler/ir": ["compiler/(root)", "compiler/ops", RT_CORE],
  // The registry names each op's backend emitters (DESIGN.md: one entry per op with all its rules), so ops/registry.ts
  // reaches into codegen's emitter tables; nothing else in ops does.
  "compiler/ops": ["compiler/(root)", "compiler/ir", RT_CORE, "compiler/codegen"],
  "compiler/lower": ["compiler/(root)", "compiler/frontend", "compiler/ir", "compiler/ops", RT_CORE],
  "compiler/passes": ["compiler/(root)", "compiler/ir", "compiler/ops", RT_CORE],
  "compiler/codegen": ["compiler/(root)", "compiler/ir", "compiler/ops", "compiler/passes", RT_CORE, "runtime/wasm"],
  "compiler/emit": ["compiler/(root)", "compiler/ir", RT_CORE, "runtime/webgpu"],
  "compiler/export": ["compiler/(root)", "compiler/frontend", "compiler/ir", "compiler/lower", "compiler/ops", "compiler/emit", RT_CORE],
  "compiler/reference": ["compiler/(root)", "compiler/ir", "compiler/ops", RT_CORE],
  "compiler/cli": ["compiler/(root)", "compiler/frontend", "compiler/frontend/onnx", "compiler/ir", "compiler/passes", "compiler/reference", "compiler/export", "compiler/emit", RT_CORE,
    "runtime/wasm", "runtime/webgpu", "runtime/data", "runtime/quantize", "runtime/train", "runtime/parallel"],
};

describe("the folder map", () => {
  const graph = importGraph();

  it("nothing under runtime/ imports compiler/ (generated modules ship the runtime, never the compiler)", () => {
    const bad = [...graph].flatMap(([f, deps]) => (f.startsWith("runtime/") ? deps.filter((d) => d.startsWith("compiler/")).map((d) => `${f} -> ${d}`) : []));
    expect(bad).toEqual([]);
  });

  it("each folder imports only what docs/architecture.md's map allows", () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = area(f);
      const allowed = ALLOWED[from];
      if (!allowed) { bad.push(`${f}: its folder ${from} is not in the map`); continue; }
      for (const d of deps) {
        const to = area(d);
        if (to !== from && !allowed.includes(to)) bad.push(`${f} -> ${d} (${from} may not import ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("has no import cycles", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (!graph.has(d)) continue;
        const s = state.get(d);
        if (s === "open") cycles.push(stack.slice(stack.indexOf(d)).concat(d).join(" -> "));
        else if (!s) visit(d);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it("finds the imports it checks (the scan is not vacuous)", () => {
    expect(graph.get("runtime/wasm/executor.ts")).toContain("runtime/manifest.ts");
    expect(relative(ROOT, ROOT)).toBe("");
  });
});
