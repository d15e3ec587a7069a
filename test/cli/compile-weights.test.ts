// `kiln compile --weights`: the trained weights ship beside the module as NAME.safetensors and the generated load()
// applies them by default (null keeps the init rules); a file that does not fit the params fails at compile time,
// naming the tensor, and writes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { main } from "../../compiler/cli/main.js";
import { loadSafetensors, serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

let dir: string;
const kiln = async (...args: string[]) => {
  let out = "";
  let err = "";
  const code = await main(args, (s) => (out += s + "\n"), (s) => (err += s + "\n"), { write: () => true, isTTY: false } as never);
  return { code, out, err };
};

beforeAll(() => {
  ensureRuntimeBuilt();
  dir = mkdtempSync(join(tmpdir(), "kiln-compile-weights-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("kiln compile --weights", () => {
  it("ships the weights and load() uses them; weights: null keeps the init rules", async () => {
    const saved = join(dir, "trained.safetensors");
    const t = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "3", "--save", saved);
    expect(t.code, t.err).toBe(0);
    const out = join(dir, "mlp");
    const c = await kiln("compile", "dsl-examples/mlp_train.kiln", "--weights", saved, "--standalone", "--out", out);
    expect(c.code, c.err).toBe(0);
    expect(existsSync(join(out, "mlp_train.safetensors"))).toBe(true);
    const file = await loadSafetensors(saved);
    const mod = await import(pathToFileURL(join(out, "mlp_train.js")).href);
    const trained = await mod.load();
    const fresh = await mod.load({ weights: null });
    for (const [name, w] of Object.entries(file.tensors)) {
      expect(Array.from(trained.getParam(name).data), name).toEqual(Array.from(w.data));
    }
    // Training moved at least one weight away from its seeded init, so the default really applied the file.
    const moved = Object.keys(file.tensors).some((n) => Array.from(fresh.getParam(n).data).some((x, i) => x !== file.tensors[n]!.data[i]));
    expect(moved).toBe(true);
  }, 240_000);

  it("a file that does not fit the params is an error naming the tensor, and nothing is written", async () => {
    const bad = join(dir, "bad.safetensors");
    writeFileSync(bad, serializeSafetensors({ "MLP.w1": new Tensor("f32", [2, 2], new Float32Array(4)) }));
    const out = join(dir, "bad-out");
    const r = await kiln("compile", "dsl-examples/mlp_train.kiln", "--weights", bad, "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--weights .*bad\.safetensors: .*"MLP\.w1"|not a param/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(existsSync(join(out, "mlp_train.js"))).toBe(false);
  }, 240_000);
});
