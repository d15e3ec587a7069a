// The compile cache: `kiln run` and `kiln compile` of an unchanged program take the artifacts from the cache (the
// tests mark a cached entry and see the mark come out), any change of source, file or options misses, and
// KILN_CACHE=0 turns it off. compileModule is the same build as an in-memory API.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../compiler/cli/main.js";
import { buildSource } from "../../compiler/build-source.js";
import { cacheDir, cacheKeyHash } from "../../compiler/cache.js";
import { compileModule } from "../../compiler/index.js";

const AUTOGRAD = "dsl-examples/autograd.kiln";
let dir = "";
const saved = { cache: process.env.KILN_CACHE, dir: process.env.KILN_CACHE_DIR };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-cache-"));
  process.env.KILN_CACHE = "1";
  process.env.KILN_CACHE_DIR = dir;
});
afterEach(() => {
  for (const [k, v] of [["KILN_CACHE", saved.cache], ["KILN_CACHE_DIR", saved.dir]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function kiln(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const code = await main(args, (s) => (out += s + "\n"), (s) => (err += s + "\n"));
  return { code, out, err };
}

/** Edits the one cache entry's manifest (the mark a cached run must show). */
function markEntry(edit: (m: { source: string; functions: { name: string; outputs: { name: string }[] }[] }) => void): void {
  const entries = readdirSync(dir).filter((e) => !e.startsWith("."));
  expect(entries).toHaveLength(1);
  const file = join(dir, entries[0]!, "entry.json");
  const e = JSON.parse(readFileSync(file, "utf8"));
  edit(e.manifest);
  writeFileSync(file, JSON.stringify(e));
}

describe("compile cache", () => {
  it("kiln run of an unchanged program uses the cached build", async () => {
    expect((await kiln("run", AUTOGRAD, "--fn", "df", "--input", "x=2")).out).toBe("result: tensor(7., dtype=f32, shape=[])\n");
    markEntry((m) => (m.functions.find((f) => f.name === "df")!.outputs[0]!.name = "from_cache"));
    const again = await kiln("run", AUTOGRAD, "--fn", "df", "--input", "x=2");
    expect(again).toMatchObject({ code: 0, out: "from_cache: tensor(7., dtype=f32, shape=[])\n" });
    // Other options are another build.
    expect((await kiln("run", AUTOGRAD, "--fn", "df", "--input", "x=2", "--precision", "mixed-bf16")).out).toMatch(/^result: /);
    expect(readdirSync(dir).filter((e) => !e.startsWith("."))).toHaveLength(2);
  });

  it("kiln compile writes the cached artifacts; a changed source misses", async () => {
    const work = mkdtempSync(join(tmpdir(), "kiln-cache-src-"));
    const out = join(work, "out");
    const src = join(work, "prog.kiln");
    writeFileSync(src, readFileSync(AUTOGRAD, "utf8"));
    expect((await kiln("compile", src, "--out", out)).code).toBe(0);
    markEntry((m) => (m.source = "marked"));
    expect((await kiln("compile", src, "--out", out)).code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "prog.manifest.json"), "utf8")).source).toBe("marked");
    writeFileSync(src, readFileSync(AUTOGRAD, "utf8") + "\n// changed\n");
    expect((await kiln("compile", src, "--out", out)).code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "prog.manifest.json"), "utf8")).source).toBe(src);
  });

  it("KILN_CACHE=0 reads and writes nothing; bad programs are never cached", async () => {
    process.env.KILN_CACHE = "0";
    const src = readFileSync(AUTOGRAD, "utf8");
    expect((await buildSource(src, { file: AUTOGRAD, cache: true })).cached).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    process.env.KILN_CACHE = "1";
    const bad = await buildSource("fn f(x: f32) -> f32 { return y }", { file: "bad.kiln", cache: true });
    expect(bad.build).toBeUndefined();
    expect(bad.diagnostics.some((d) => d.severity === "error")).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    expect((await buildSource(src, { file: AUTOGRAD, cache: true })).cached).toBe(false);
    expect((await buildSource(src, { file: AUTOGRAD, cache: true })).cached).toBe(true);
  });

  it("the A/B switches that change the kernels a source compiles to are part of the key", () => {
    const key = { file: "a.kiln", source: "fn f(x: f32) -> f32 { return x }", options: {} };
    for (const knob of ["KILN_WINOGRAD", "KILN_CONV_WGRAD_GATHER", "KILN_THREADS_NSPLIT", "KILN_CONV_DY_NCHW", "KILN_SOFTMAX_GRAD_ROWS", "KILN_CONV_DX_PHASE", "KILN_CONV_GATHER_HALF"]) {
      const was = process.env[knob];
      try {
        delete process.env[knob];
        const plain = cacheKeyHash(key);
        process.env[knob] = "0";
        expect(cacheKeyHash(key), knob).not.toBe(plain);
      } finally {
        if (was === undefined) delete process.env[knob];
        else process.env[knob] = was;
      }
    }
  });

  it("goes to KILN_CACHE_DIR, else node_modules/.cache/kiln, else $XDG_CACHE_HOME/kiln", () => {
    expect(cacheDir({ KILN_CACHE_DIR: "/x/y" })).toBe("/x/y");
    expect(cacheDir({}, process.cwd())).toBe(join(process.cwd(), "node_modules", ".cache", "kiln"));
    expect(cacheDir({ XDG_CACHE_HOME: "/xdg" }, dir)).toBe("/xdg/kiln");
  });
});

describe("compileModule (the package API)", () => {
  it("returns the module's files in memory, importing the runtime from the package", async () => {
    const r = await compileModule(readFileSync(AUTOGRAD, "utf8"), { file: "autograd.kiln" });
    expect(r.ok).toBe(true);
    expect(r.files.map((f) => f.rel).sort()).toEqual(["autograd.d.ts", "autograd.js", "autograd.manifest.json", "autograd.relaxed.wasm", "autograd.wasm"]);
    expect(String(r.files.find((f) => f.rel === "autograd.js")!.data)).toContain(`from "@kiln-ml/kiln/runtime"`);
    expect(r.manifest!.functions.map((f) => f.name)).toContain("df");
    const bad = await compileModule("fn f(x: f32) -> f32 { return y }", { file: "bad.kiln" });
    expect(bad).toMatchObject({ ok: false, files: [] });
    expect(bad.message).toMatch(/bad\.kiln:1:\d+: error K\d+/);
  });
});
