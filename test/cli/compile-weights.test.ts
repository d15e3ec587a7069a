// `kiln compile --weights`: trained weights ship beside the module and its load() loads them by default (a
// shipped model never silently runs on its random init); a file that does not fit the module fails the compile.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../compiler/cli/main.js";
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { loadKilnModule, serializeSafetensors, type Tensor } from "../../runtime/index.js";

async function kiln(...args: string[]): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await main(args, () => {}, (s) => (err += s + "\n"));
  return { code, err };
}

describe("kiln compile --weights", () => {
  it("the module loads the compiled-in weights unless given others; a bad file fails the compile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-cw-"));
    const ir = compileToIR(readFileSync("dsl-examples/mlp.kiln", "utf8"), "dsl-examples/mlp.kiln").ir!;
    const b = await buildWasm(ir, "mlp", { wat: false });
    const trained = await loadKilnModule(b.manifest, b.wasm, { seed: 5 });
    const tensors: Record<string, Tensor> = {};
    for (const p of b.manifest.params) tensors[p.name] = trained.getParam(p.name);
    writeFileSync(join(dir, "w.safetensors"), serializeSafetensors(tensors));
    const { ["MLP.b2"]: _dropped, ...partial } = tensors;
    writeFileSync(join(dir, "partial.safetensors"), serializeSafetensors(partial));

    expect((await kiln("compile", "dsl-examples/mlp.kiln", "--standalone", "--weights", join(dir, "w.safetensors"), "--out", join(dir, "mlp"))).code).toBe(0);
    expect(existsSync(join(dir, "mlp", "mlp.weights.safetensors"))).toBe(true);
    writeFileSync(join(dir, "use.mjs"), `
      import { load } from "./mlp/mlp.js";
      const shipped = await load(), fresh = await load({ weights: null });
      console.log(JSON.stringify({ w1: shipped.getParam("MLP.w1").data[7], fresh: fresh.getParam("MLP.w1").data[7] }));`);
    const out = JSON.parse(execFileSync(process.execPath, ["use.mjs"], { cwd: dir, encoding: "utf8" }).trim());
    expect(out.w1).toBe(tensors["MLP.w1"]!.data[7]);
    expect(out.fresh).not.toBe(out.w1);

    const bad = await kiln("compile", "dsl-examples/mlp.kiln", "--weights", join(dir, "partial.safetensors"), "--out", join(dir, "bad"));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--weights .*partial\.safetensors: .*no tensor for param "MLP\.b2"/);
    expect(existsSync(join(dir, "bad", "mlp.js"))).toBe(false);
    const missing = await kiln("compile", "dsl-examples/mlp.kiln", "--weights", join(dir, "nope.safetensors"), "--out", join(dir, "bad"));
    expect(missing).toMatchObject({ code: 1, err: expect.stringMatching(/cannot read .*nope\.safetensors.*no such file/) });
  });
});
