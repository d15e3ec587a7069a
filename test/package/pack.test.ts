// The package as a new user gets it: `npm pack` of a copy of this checkout (prepack builds dist/), the tarball's
// contents, then `npm install` of the tarball into an empty project, where the installed `kiln` compiles, runs
// and trains, a script imports a generated module, the compiler API and the runtime, and `tsc --strict`
// typechecks a TypeScript consumer. Installing needs the npm registry (or an npm cache holding the dependencies):
// part of `npm test`; KILN_SKIP_PACK_TEST=1 skips it where neither is reachable.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, type ExecFileSyncOptions } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const skip = process.env.KILN_SKIP_PACK_TEST === "1";
let tmp = "";
let app = "";
let files: string[] = [];

function run(cmd: string, args: string[], cwd: string, extra: ExecFileSyncOptions = {}): string {
  // ONNXRUNTIME_NODE_INSTALL=skip: no user install pulls onnxruntime-node, but a stale cache must not download it either.
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip", KILN_CACHE: "0", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };
  try {
    return String(execFileSync(cmd, args, { cwd, env, encoding: "utf8", stdio: "pipe", ...extra }));
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}:\n${x.stdout ?? ""}\n${x.stderr ?? x.message}`);
  }
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

beforeAll(() => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), "kiln-pack-"));
  // A copy of the checkout (tracked and new files, not what .gitignore ignores), so packing (which rebuilds dist/)
  // never touches the dist/ the other tests load; its node_modules is this checkout's (tsc for the build).
  const src = join(tmp, "src");
  const listed = run("git", ["ls-files", "-co", "--exclude-standard", "-z"], ROOT).split("\0").filter((f) => f && f !== "node_modules");
  for (const f of listed) {
    mkdirSync(dirname(join(src, f)), { recursive: true });
    try {
      cpSync(join(ROOT, f), join(src, f));
    } catch {
      // listed but deleted in the working tree
    }
  }
  symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"), "dir");
  const packed = JSON.parse(run(npm, ["pack", "--json", "--pack-destination", tmp], src)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = packed[0]!.files.map((f) => f.path);
  const tarball = join(tmp, packed[0]!.filename);

  app = join(tmp, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "kiln-user", private: true, type: "module" }));
  run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], app);
}, 600_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)("the npm package", { timeout: 300_000 }, () => {
  it("holds dist/, the docs, the examples and MNIST, and no tests, benchmarks, CI files or source maps", () => {
    for (const f of ["package.json", "README.md", "bin/kiln.js", "dist/compiler/index.js", "dist/compiler/index.d.ts", "dist/runtime/index.js",
      "dist/runtime/index.d.ts", "dist/compiler/cli/main.js", "dsl-examples/mnist_mlp.kiln", "docs/architecture.md", "data/mnist/t10k-images-idx3-ubyte.gz"]) {
      expect(files, f).toContain(f);
    }
    const unwanted = files.filter((f) => /^(test|bench|\.ci|scripts)\//.test(f) || f.endsWith(".map") || f.endsWith(".test.ts") || /(^|\/)\.npmrc$/.test(f));
    expect(unwanted).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(app, "node_modules", "@kiln-ml", "kiln", "package.json"), "utf8"));
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain("onnxruntime-node");
    expect(pkg.optionalDependencies).toBeUndefined();
  });

  it("installs a working kiln command: --version, compile, run, train", () => {
    const kiln = join(app, "node_modules", ".bin", "kiln");
    const examples = join(app, "node_modules", "@kiln-ml", "kiln", "dsl-examples");
    expect(run(kiln, ["--version"], app).trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(run(kiln, ["compile", join(examples, "mlp.kiln"), "--out", "build/mlp"], app)).toContain("build/mlp/mlp.js");
    expect(run(kiln, ["run", join(examples, "autograd.kiln"), "--fn", "df", "--input", "x=2"], app)).toContain("result: tensor(7., dtype=f32, shape=[])");
    const train = run(kiln, ["train", join(examples, "mlp_train.kiln"), "--steps", "3", "--batch", "8"], app);
    expect(train).toMatch(/step 3\/3 {2}loss \d/);
  });

  it("a generated module, the compiler API and the runtime import from the package (one runtime)", () => {
    writeFileSync(join(app, "use.mjs"), `
      import { load } from "./build/mlp/mlp.js";
      import { Tensor } from "@kiln-ml/kiln/runtime";
      import { compileModule } from "@kiln-ml/kiln";
      const m = await load({ backend: "auto", seed: 1 });
      const y = await m.MLP.forward({ x: new Float32Array(2 * 784) }).read();
      const c = await compileModule("fn f(x: f32) -> f32 { return x * 2 }", { file: "f.kiln" });
      console.log(JSON.stringify({ backend: m.backend, shape: y.shape, same: y instanceof Tensor, files: c.files.map((f) => f.rel).sort() }));
    `);
    const out = JSON.parse(run(process.execPath, ["use.mjs"], app).trim());
    expect(out).toEqual({ backend: "wasm", shape: [2, 10], same: true, files: ["f.d.ts", "f.js", "f.manifest.json", "f.relaxed.wasm", "f.wasm"] });
  });

  it("a TypeScript consumer typechecks with tsc --strict", () => {
    writeFileSync(join(app, "consumer.ts"), `
import { load } from "./build/mlp/mlp.js";
import { Tensor, loadKilnModuleFromUrl, type KilnModule } from "@kiln-ml/kiln/runtime";
import { compileModule, type CompiledModule } from "@kiln-ml/kiln";
const m = await load({ seed: 1, weights: new Uint8Array(0), partialWeights: true });
const y: Tensor<"f32"> = m.MLP.forward({ x: new Float32Array(784) }, { batch: 1 });
const r: Tensor<"f32"> = await y.read();
const any = await load({ backend: ["webgpu", "wasm"] });
const t = await any.MLP.forward({ x: new Float32Array(784) }).read();
const c: CompiledModule = await compileModule("fn f(x: f32) -> f32 { return x }");
const u: KilnModule = await loadKilnModuleFromUrl("build/mlp/mlp.manifest.json");
// @ts-expect-error an i32 Tensor is not an f32 input
m.MLP.forward({ x: new Tensor("i32", [1, 784]) });
console.log(r.shape, t.shape, c.ok, u.backend, any.backend, m.threads);
`);
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: [], skipLibCheck: false },
      files: ["consumer.ts"],
    }));
    run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);
  });
});
