import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeModule } from "../../compiler/emit/module-writer.js";
import { renderDts } from "../../compiler/emit/dts.js";
import { loadKilnModuleFromUrl, type KilnFunction, type Tensor } from "../../runtime/index.js";
import { kernelsWasm, testManifest } from "./helpers.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/** Static and literal dynamic import/export specifiers of a JS file. */
function importSpecifiers(code: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /\bimport\s+(?:[\w*${}\s,]+\s+from\s+)?["']([^"']+)["']/g,
    /\bexport\s+(?:\*|\{[^}]*\})\s*(?:as\s+\w+\s+)?from\s+["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1]!);
  return specs;
}

let tmp: string;
let outDir: string;
let written: string[];

beforeAll(async () => {
  ensureRuntimeBuilt();
  tmp = mkdtempSync(join(tmpdir(), "kiln-emit-"));
  outDir = join(tmp, "out");
  written = await writeModule({ outDir, baseName: "net", manifest: testManifest(), wasm: await kernelsWasm(), standalone: true });
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("writeModule (standalone)", () => {
  test("writes the module files and a copy of the runtime", () => {
    const rel = written.map((p) => relative(outDir, p).split(sep).join("/"));
    for (const f of ["net.wasm", "net.manifest.json", "net.js", "net.d.ts", "kiln-runtime/index.js", "kiln-runtime/index.d.ts", "kiln-runtime/manifest.js", "kiln-runtime/package.json"]) {
      expect(rel).toContain(f);
    }
    for (const p of written) expect(existsSync(p)).toBe(true);
    const all = listFiles(outDir).map((p) => relative(outDir, p).split(sep).join("/"));
    expect(all.sort()).toEqual([...rel].sort());
    expect(all.some((f) => f.includes("reference."))).toBe(false);
    expect(all.some((f) => f.endsWith(".map"))).toBe(false);
    expect(all.some((f) => f.includes(".kiln-tmp"))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(outDir, "net.manifest.json"), "utf8"));
    expect(manifest.wasm).toBe("net.wasm");
    expect(manifest.functions.length).toBe(8);
    expect(readFileSync(join(outDir, "kiln-runtime", "index.js"), "utf8")).not.toContain("sourceMappingURL");
  });

  test("no generated .js file imports anything outside the output dir", () => {
    const jsFiles = listFiles(outDir).filter((f) => f.endsWith(".js"));
    expect(jsFiles.length).toBeGreaterThan(5);
    for (const file of jsFiles) {
      for (const spec of importSpecifiers(readFileSync(file, "utf8"))) {
        if (spec.startsWith("node:")) continue; // builtins (only behind the Node check)
        expect(spec.startsWith("./") || spec.startsWith("../"), `${relative(outDir, file)} imports bare "${spec}"`).toBe(true);
        const target = resolve(dirname(file), spec);
        expect(target.startsWith(outDir + sep), `${relative(outDir, file)} imports "${spec}" outside the output dir`).toBe(true);
        expect(existsSync(target), `${relative(outDir, file)} imports missing "${spec}"`).toBe(true);
      }
    }
  });

  test("the generated module loads and runs in a separate node process", () => {
    const url = pathToFileURL(join(outDir, "net.js")).href;
    const script = `
      const { load, Tensor, manifest } = await import(${JSON.stringify(url)});
      const m = await load({ seed: 1 });
      const y = m.Net.forward({ x: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) });
      const stats = m.Net.stats({ x: new Tensor("f32", [1, 4], [1, 2, 3, 4]) });
      const [total] = stats;
      if (stats.total !== total || stats.doubled !== stats[1] || (await stats.doubled.read()) !== stats[1]) throw new Error("outputs by name");
      let err = "";
      try { m.Net.forward({ x: new Int32Array(8) }); } catch (e) { err = e.name + ": " + e.message; }
      console.log(JSON.stringify({ shape: y.shape, data: Array.from(y.data), total: total.toArray(), fns: manifest.functions.length, err }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: tmp, encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").pop()!);
    expect(r.shape).toEqual([2, 2, 2]);
    expect(r.data).toEqual([3, 5, 7, 9, 11, 13, 15, 17]);
    expect(r.total).toBe(10);
    expect(r.fns).toBe(8);
    expect(r.err).toContain(`KilnError: Net.forward: input "x" expected f32[B, 4] but got an Int32Array`);
  });

  test("loadKilnModuleFromUrl reads the manifest and wasm (path and file URL)", async () => {
    type M = { addi: KilnFunction };
    const a = await loadKilnModuleFromUrl<M>(join(outDir, "net.manifest.json"));
    expect((a.addi({ a: [1, 2], b: [3, 4] }) as Tensor).toArray()).toEqual([4, 6]);
    const b = await loadKilnModuleFromUrl<M>(pathToFileURL(join(outDir, "net.manifest.json")));
    expect(b.functions).toContain("Net.forward");
    await expect(loadKilnModuleFromUrl(join(outDir, "missing.manifest.json"))).rejects.toThrow(/could not read/);
  });

  test("the .d.ts types the module precisely (checked with tsc)", () => {
    const dts = readFileSync(join(outDir, "net.d.ts"), "utf8");
    expect(dts).toContain(`export type ParamName = "Net.b";`);
    expect(dts).toContain(`x: Float32Array | Tensor<"f32"> | readonly number[];`);
    expect(dts).toContain(`stats(inputs: NetStatsInputs, options?: CallOptions<NetStatsOut>): [Tensor<"f32">, Tensor<"f32">] & { readonly total: Tensor<"f32">; readonly doubled: Tensor<"f32"> };`);
    expect(dts).toContain(`export type NetStatsOut = { readonly total?: Float32Array | Tensor<"f32">; readonly doubled?: Float32Array | Tensor<"f32"> };`);
    expect(dts).toContain(`export type NetForwardOut = { readonly y?: Float32Array | Tensor<"f32"> } | Float32Array | Tensor<"f32">;`);
    expect(dts).toContain(`getParam(name: "Net.b"): Tensor<"f32">;`);
    writeFileSync(join(tmp, "consumer.ts"), `
import { load, Tensor, type NetModule, type ParamName } from "./out/net.js";
const m: NetModule = await load({ seed: 1, params: { "Net.b": [1, 2, 3, 4] } });
const y: Tensor = m.Net.forward({ x: new Float32Array(8) }, { batch: 2 });
const [t, d]: [Tensor, Tensor] = m.Net.stats({ x: [1, 2, 3, 4] });
const total: Tensor<"f32"> = m.Net.stats({ x: [1, 2, 3, 4] }).total;
const read: Tensor<"f32"> = await m.Net.forward({ x: [1, 2, 3, 4] }).read();
const where: "wasm" = m.backend;
const threads: number = m.threads;
const auto = await load({ backend: ["webgpu", "wasm"], weights: new Uint8Array(0), partialWeights: true });
const anyRead: Tensor<"f32"> = await auto.Net.forward({ x: [1, 2, 3, 4] }).read();
console.log(total, read, where, threads, anyRead, auto.fallbackReason);
const c: Tensor = m.addi({ a: new Int32Array(2), b: [1, 2] });
const ci: Int32Array = m.addi({ a: [1], b: [2] }).data;
const yf: Float32Array = m.Net.forward({ x: [1, 2, 3, 4] }).data;
const bf: Float32Array = m.getParam("Net.b").data;
const s: Tensor = m.scale({ v: [1], s: 2 });
const o: Tensor = m.Other.forward({ v: new Tensor("f32", [2], [1, 2]) });
const q: Tensor = m.call("Net.forward", { x: [1, 2, 3, 4] }, { dims: { B: 1 } });
const p: ParamName = "Net.b";
const into = new Float32Array(4);
const reused: Float32Array = m.Net.forward({ x: [1, 2, 3, 4] }, { out: { y: into } }).data;
m.Net.stats({ x: [1, 2, 3, 4] }, { out: { total: new Float32Array(1) } });
m.Net.forward({ x: [1, 2, 3, 4] }, { out: into });
console.log(reused);
// @ts-expect-error options.out names only the function's outputs
m.Net.stats({ x: [1, 2, 3, 4] }, { out: { nope: into } });
// @ts-expect-error an i32 output needs an Int32Array
m.addi({ a: [1], b: [2] }, { out: { c: new Float32Array(1) } });
// @ts-expect-error a two-output function takes its buffers by name
m.Net.stats({ x: [1, 2, 3, 4] }, { out: into });
// @ts-expect-error no options.out on WebGPU (results stay on the GPU)
void load({ backend: "webgpu" }).then((g) => g.Net.forward({ x: [1, 2, 3, 4] }, { out: into }));
m.setParam(p, m.getParam("Net.b"));
console.log(y.shape, t.size, d.size, c.size, s.size, o.size, q.size, m.functions, m.params());
// @ts-expect-error an Int32Array is not an f32 input
m.Net.forward({ x: new Int32Array(8) });
// @ts-expect-error an i32 Tensor is not an f32 input
m.Net.forward({ x: new Tensor("i32", [1, 4]) });
// @ts-expect-error an i32 result has Int32Array data
const wrong: Float32Array = m.addi({ a: [1], b: [2] }).data;
// @ts-expect-error missing input
m.addi({ a: [1] });
// @ts-expect-error unknown param
m.getParam("Net.zz");
// @ts-expect-error a shared jsName has no direct form
m.forward({ x: [1] });
// @ts-expect-error a single-output function returns a Tensor, not a tuple
const [bad]: [Tensor] = m.addi({ a: [1], b: [1] });
// @ts-expect-error unknown param in load options
void load({ params: { nope: [1] } });
console.log(bad, ci, yf, bf, wrong);
export {};
`);
    writeFileSync(join(tmp, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], skipLibCheck: false },
      files: ["consumer.ts"],
    }));
    let output = "";
    try {
      execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(tmp, "tsconfig.json")], { cwd: tmp, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      output = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(output).toBe("");
  }, 60_000);

  test("rewriting replaces the output in place; bad base names are rejected", async () => {
    const again = await writeModule({ outDir, baseName: "net", manifest: testManifest(), wasm: await kernelsWasm(), standalone: true });
    expect(again.length).toBe(written.length);
    expect(readdirSync(outDir).some((f) => f.startsWith(".kiln-tmp"))).toBe(false);
    await expect(writeModule({ outDir, baseName: "a/b", manifest: testManifest(), wasm: new Uint8Array() })).rejects.toThrow(/bad baseName/);
  });

  test("renderDts keeps reserved and clashing names out of the direct methods", () => {
    const mf = testManifest();
    mf.functions.push({ ...mf.functions.find((f) => f.name === "addi")!, name: "then", jsName: "then" });
    const dts = renderDts(mf, "x");
    expect(dts).not.toMatch(/^ {2}then\(/m);
    expect(dts).not.toMatch(/^ {2}forward\(/m);
    expect(dts).toMatch(/^ {2}call\(name: "then"/m);
  });
});
