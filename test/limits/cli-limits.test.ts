// Issue 15 through the command line: hostile programs exit 1 with a numbered diagnostic and a caret, never 3
// with a stack trace (or SIGABRT out of heap); bad weights files for `kiln quantize` name the missing tensor.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli/main.js";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";

async function kiln(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const dir = mkdtempSync(join(tmpdir(), "kiln-limits-"));
const file = (name: string, src: string) => {
  const p = join(dir, name);
  writeFileSync(p, src);
  return p;
};

describe("kiln on hostile programs", () => {
  it.each([
    ["parens.kiln", `fn f(x: f32) -> f32 {\n  return ${"(".repeat(300)}x${")".repeat(300)}\n}`, "K105", ["check"]],
    ["cr.kiln", "fn\rMy", "K104", ["check"]],
    ["param.kiln", "model M {\n  param w: f32[100000, 100000] = zeros()\n  fn f(x: f32[3]) -> f32 { return sum(w) + sum(x) }\n}", "K412", ["run", "--fn", "M.f", "--input", "x=random:[3]"]],
    ["onehot.kiln", "fn f(labels: i32[4]) -> f32 {\n  return sum(one_hot(labels, -3))\n}", "K411", ["run", "--fn", "f", "--input", "labels=random:[4]"]],
    ["wrap.kiln", "fn f(x: i32[3]) -> i32[3] {\n  return x + 3000000000\n}", "K306", ["compile", "--emit", "ir"]],
  ])("%s", async (name, src, code, cmd) => {
    const p = file(name, src);
    const [verb, ...rest] = cmd as string[];
    const r = await kiln(verb!, p, ...rest);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error ${code}`);
    expect(r.err).toMatch(/\n\s+\|\s*\^/); // the caret line
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe("kiln quantize --weights", () => {
  it("a weights file without a tensor is an error naming it", async () => {
    const src = file("mlp.kiln", "model M {\n  param w: f32[4, 3] = he()\n  param b: f32[3] = zeros()\n  fn forward(x: f32[B, 4]) -> f32[B, 3] { return x @ w + b }\n}");
    const weights = join(dir, "w.safetensors");
    writeFileSync(weights, serializeSafetensors({ "M.w": new Tensor("f32", [4, 3]) }, { format: "kiln-weights" }));
    const r = await kiln("quantize", src, "--weights", weights, "--out", join(dir, "q.safetensors"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/no tensor "M.b"/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe("kiln run with out-of-range class labels", () => {
  it.each(["wasm", "reference"])("--backend %s names the input, the index and the value", async (backend) => {
    const src = file("ce.kiln", "fn f(logits: f32[2, 10], labels: i32[2]) -> f32 {\n  return cross_entropy(logits, labels)\n}");
    const r = await kiln("run", src, "--fn", "f", "--input", "logits=random:[2,10]", "--input", "labels=[3,10]", "--backend", backend);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('input "labels" element 1 is 10, not a class label in [0, 10)');
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
