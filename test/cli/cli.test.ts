// The kiln command line, run in-process through main() (and once through bin/kiln.js as a real process):
// exit codes, messages, files written, and nothing written when there are errors.
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../compiler/cli/main.js";

async function kiln(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const tmp = () => mkdtempSync(join(tmpdir(), "kiln-cli-"));

describe("kiln compile", () => {
  it("writes the module, types, wasm and manifest", async () => {
    const dir = join(tmp(), "mlp");
    const r = await kiln("compile", "dsl-examples/mlp.kiln", "--out", dir);
    expect(r.code).toBe(0);
    // The runtime comes from the package (one per app); --standalone copies it beside the module instead.
    expect(readdirSync(dir).sort()).toEqual(["mlp.d.ts", "mlp.js", "mlp.manifest.json", "mlp.relaxed.wasm", "mlp.wasm"]);
    expect(readFileSync(join(dir, "mlp.js"), "utf8")).toContain(`from "@kiln-ml/kiln/runtime"`);
    const m = JSON.parse(readFileSync(join(dir, "mlp.manifest.json"), "utf8"));
    expect(m.functions.map((f: { name: string }) => f.name)).toEqual(["MLP.forward", "MLP.predict", "MLP.loss"]);
    expect(m.params.map((p: { name: string; shape: number[] }) => `${p.name}:${p.shape}`)).toEqual(["MLP.w1:784,128", "MLP.b1:128", "MLP.w2:128,10", "MLP.b2:10"]);
    expect(readFileSync(join(dir, "mlp.d.ts"), "utf8")).toContain("forward(inputs: MLPForwardInputs, options?: CallOptions<MLPForwardOut>): Tensor<\"f32\">");
    const wasm = readFileSync(join(dir, "mlp.wasm"));
    expect(WebAssembly.validate(wasm)).toBe(true);
  });

  it("--emit ir prints the IR and writes nothing", async () => {
    const r = await kiln("compile", "dsl-examples/autograd.kiln", "--emit", "ir");
    expect(r.code).toBe(0);
    expect(r.out).toContain("fn f(x: f32) -> (result: f32) {");
    expect(r.out).toContain("%1 = mul %0, %0 : f32");
  });

  it("--dump-after prints the IR after each named pass", async () => {
    const r = await kiln("compile", "dsl-examples/autograd.kiln", "--emit", "ir", "--dump-after", "lower", "--dump-after", "simplify");
    expect(r.out).toContain("// after lower");
    expect(r.out).toContain("// after simplify");
    const bad = await kiln("compile", "dsl-examples/autograd.kiln", "--dump-after", "nosuchpass");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown pass 'nosuchpass'");
  });

  it("--emit wat prints WebAssembly text with SIMD", async () => {
    const r = await kiln("compile", "dsl-examples/broadcast.kiln", "--emit", "wat");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\(module/);
    expect(r.out).toMatch(/f32x4\./);
  });

  it("a bad program: diagnostics with file:line:col and caret, exit 1, no files", async () => {
    const dir = tmp();
    const src = join(dir, "bad.kiln");
    writeFileSync(src, "fn f(x: f32[4, 784], w: f32[128, 10]) -> f32[4, 10] {\n  let y = x @ w\n  return y + zz\n}\n");
    const out = join(dir, "out");
    const r = await kiln("compile", src, "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${src}:2:13: error K402: matmul shape mismatch`);
    expect(r.err).toContain("  let y = x @ w\n   |             ^");
    expect(r.err).toContain("hint: matmul needs x[..., K] @ w[K, N]: got [4, 784] @ [128, 10]");
    expect(r.err).toContain(`${src}:3:14: error K201: unknown name 'zz'`);
    expect(r.err).toContain("2 errors");
    expect(existsSync(out)).toBe(false);
  });

  it("a missing file names the file", async () => {
    const r = await kiln("compile", "nope/missing.kiln");
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot read 'nope/missing.kiln': no such file");
  });

  it("usage errors exit 2 with the usage text", async () => {
    for (const args of [["frobnicate"], ["compile"], ["compile", "a.kiln", "--wat"], ["run", "dsl-examples/mlp.kiln"]]) {
      const r = await kiln(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toContain("usage:");
    }
  });

  it("f64 programs are refused for wasm with a diagnostic, and run on the reference", async () => {
    const dir = tmp();
    const src = join(dir, "f64.kiln");
    writeFileSync(src, "fn f(x: f64[3]) -> f64[3] {\n  return x * 2\n}\n");
    const r = await kiln("compile", src, "--out", join(dir, "o"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("K502");
    expect(existsSync(join(dir, "o"))).toBe(false);
    const ok = await kiln("run", src, "--fn", "f", "--input", "x=[1,2,3]", "--backend", "reference");
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("2.");
  });
});

describe("kiln run", () => {
  it("runs the MLP on a random batch (wasm) and prints a [4, 10] tensor", async () => {
    const r = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "x=random:[4,784]", "--seed", "1");
    expect(r.code).toBe(0);
    expect(r.out).toContain("shape=[4, 10]");
  });

  it("prints f(2) = 11 on both backends", async () => {
    for (const backend of ["wasm", "reference"]) {
      const r = await kiln("run", "dsl-examples/autograd.kiln", "--fn", "f", "--input", "x=2", "--backend", backend);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/result: .*11/);
    }
  });

  it("wasm and reference print the same MLP logits for the same seed", async () => {
    const a = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "x=random:[2,784]", "--seed", "7");
    const b = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "x=random:[2,784]", "--seed", "7", "--backend", "reference");
    const nums = (s: string) => (s.match(/-?\d+\.\d+/g) ?? []).map(Number);
    const x = nums(a.out), y = nums(b.out);
    expect(x.length).toBe(20);
    x.forEach((v, i) => expect(Math.abs(v - y[i])).toBeLessThanOrEqual(1e-3));
  });

  it("runtime errors are messages, not stack traces", async () => {
    const bad = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "x=random:[4,783]");
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('input "x"');
    expect(bad.err).not.toContain("    at ");
    const unknownFn = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "backward");
    expect(unknownFn.code).toBe(1);
    expect(unknownFn.err).toContain("has no function 'backward'");
    const unknownInput = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "y=1");
    expect(unknownInput.err).toContain("has no input 'y'");
    const badSpec = await kiln("run", "dsl-examples/mlp.kiln", "--fn", "forward", "--input", "x=random:[a]");
    expect(badSpec.code).toBe(1);
    expect(badSpec.err).toContain("--input x");
  });
});

describe("kiln train and autodiff dumps", () => {
  it("--dump-after autodiff shows the backward graph", async () => {
    const r = await kiln("compile", "dsl-examples/autograd.kiln", "--emit", "ir", "--dump-after", "autodiff");
    expect(r.code).toBe(0);
    expect(r.out).toContain("// after autodiff");
    expect(r.out).not.toMatch(/= gradient /);
  });
  it("trains a train block on a synthetic batch, printing the loss per step", async () => {
    const r = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "3", "--batch", "4");
    expect(r.code).toBe(0);
    const losses = [...r.out.matchAll(/step \d\/3 {2}loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
    expect(losses.length).toBe(3);
    expect(losses[2]).toBeLessThan(losses[0]);
  });
  it("bad train options and files without a train block", async () => {
    expect((await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "0")).code).toBe(2);
    expect((await kiln("train", "dsl-examples/mlp_train.kiln", "--data", "cifar")).code).toBe(2);
    const none = await kiln("train", "dsl-examples/mlp.kiln");
    expect(none.code).toBe(1);
    expect(none.err).toContain("has no train block");
    const unknown = await kiln("train", "dsl-examples/mlp_train.kiln", "--train", "Nope");
    expect(unknown.err).toContain("has no train block 'Nope' (it has: Sgd, Adam)");
  });
});

describe("bin/kiln.js as a process", () => {
  it("runs compile and check from the built dist/", () => {
    const r = spawnSync(process.execPath, ["bin/kiln.js", "check", "dsl-examples/attention.kiln"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("no errors");
    const v = execFileSync(process.execPath, ["bin/kiln.js", "--version"], { encoding: "utf8" });
    expect(v.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
