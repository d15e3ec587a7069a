// Training checkpoints (runtime/train/checkpoint.ts, `kiln train --checkpoint/--resume`): a run stopped after a skipped
// (overflowing) step and resumed from its checkpoint in a fresh module continues bit for bit like the run that
// never stopped — weights, 16-bit copies, momentum and the loss scaler's scale and clean-step count — on wasm and
// on WebGPU; bad files are errors naming the tensor and change nothing.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileToIR } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { wasmModule } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { checkpointParams, loadCheckpoint, saveCheckpoint, serializeCheckpoint } from "../../runtime/train/checkpoint.js";
import { readScaler } from "../../runtime/train/loss-scale.js";
import { parseSafetensors, serializeSafetensors } from "../../runtime/safetensors.js";
import { main } from "../../compiler/cli/main.js";
import { webgpuEnv } from "../webgpu/helpers.js";
import { loadMode, modesOf } from "../webgpu/half-helpers.js";

const SRC = `
model M {
  param w: f32[3, 2] = constant(0.5)
  param b: f32[2] = zeros()
  fn loss(x: f32[1, 3]) -> f32 { return sum((x @ w + b) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.001, momentum: 0.9), loss_scale: dynamic(init: 1024, interval: 3) }`;
const ir = (): IRModule => compileToIR(SRC, "ckpt.kiln", [], [], { precision: "mixed-f16" }).ir!;
// [300, 1, 1] overflows only the f16 weight gradient (2 * 151 * 300 * 1024 > 65504; hand-derived as in
// test/precision/loss-scale-mixed.test.ts): the step is skipped and the scale halves.
const XS = [[1, 2, 3], [300, 1, 1], [1, -2, 0.5], [0.5, 0.5, -1], [2, 1, 0]];
const x = (v: number[]) => ({ x: new Tensor("f32", [1, 3], v) });
async function runCli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}
const everything = (ps: string[], get: (n: string) => Tensor) => Object.fromEntries(ps.map((n) => [n, Array.from(get(n).data as ArrayLike<number>)]));

describe("training checkpoints on wasm", () => {
  it("hold weights, momentum and the scaler, never the f16 copies", async () => {
    const mod = await wasmModule(ir());
    const names = checkpointParams(mod);
    expect(names).toEqual(expect.arrayContaining(["M.w", "M.b", "T.momentum.M.w", "T.scaler.scale", "T.scaler.good_steps"]));
    expect(names).not.toContain("M.w.f16");
    const file = parseSafetensors(await serializeCheckpoint(mod));
    expect(Object.keys(file.tensors).sort()).toEqual([...names].sort());
    expect(file.metadata.format).toBe("kiln-checkpoint");
  });

  it("a run resumed after a skipped step continues bit for bit", async () => {
    const a = await wasmModule(ir());
    for (const v of XS.slice(0, 2)) a.call("T.step", x(v));
    expect(readScaler(a, "T")).toMatchObject({ scale: 512, goodSteps: 0 });
    a.call("T.step", x(XS[2]!));
    const bytes = await serializeCheckpoint(a);
    const b = await wasmModule(ir(), 7);
    await loadCheckpoint(b, bytes);
    expect(readScaler(b, "T")).toEqual(readScaler(a, "T"));
    const all = a.manifest.params.map((p) => p.name);
    // The f16 copy is refreshed from the loaded master, equal to the one the first run's step wrote.
    expect(everything(all, (n) => b.getParam(n))).toEqual(everything(all, (n) => a.getParam(n)));
    for (const v of XS.slice(3)) {
      a.call("T.step", x(v));
      b.call("T.step", x(v));
    }
    expect(everything(all, (n) => b.getParam(n))).toEqual(everything(all, (n) => a.getParam(n)));
    // The clean-step count crossed the resume: 1 before it, 3 after two more = interval, so the scale doubled
    // back to 1024 and the count restarted (a resumed count of 0 would have left 512 and 2).
    expect(readScaler(b, "T")).toMatchObject({ scale: 1024, goodSteps: 0 });
  });

  it("bad checkpoints are errors naming the tensor, and change nothing", async () => {
    const a = await wasmModule(ir());
    a.call("T.step", x(XS[0]!));
    const good = parseSafetensors(await serializeCheckpoint(a));
    const fresh = await wasmModule(ir());
    const before = everything(checkpointParams(fresh), (n) => fresh.getParam(n));
    const variant = (f: (t: Record<string, Tensor>) => void, format = "kiln-checkpoint") => {
      const tensors = { ...good.tensors };
      f(tensors);
      return serializeSafetensors(tensors, { format });
    };
    const cases: [Uint8Array, RegExp, string | undefined][] = [
      [variant(() => {}, "kiln-weights"), /not a training checkpoint.*loadWeights/, undefined],
      [variant((t) => delete t["T.scaler.scale"]), /no tensor "T.scaler.scale"/, "T.scaler.scale"],
      [variant((t) => (t["Other.w"] = new Tensor("f32", [1], [1]))), /"Other.w" is not a param/, "Other.w"],
      [variant((t) => (t["M.w.f16"] = a.getParam("M.w.f16"))), /16-bit copy/, "M.w.f16"],
      [variant((t) => (t["M.b"] = new Tensor("f32", [3], [1, 2, 3]))), /"M.b" is f32\[3\] but the param is f32\[2\]/, "M.b"],
    ];
    for (const [bytes, msg, tensor] of cases) {
      const e = await loadCheckpoint(fresh, bytes).then(() => undefined, (err: unknown) => err);
      expect(e, String(msg)).toBeInstanceOf(KilnError);
      expect((e as KilnError).message).toMatch(msg);
      expect((e as KilnError).tensor).toBe(tensor);
    }
    expect(everything(checkpointParams(fresh), (n) => fresh.getParam(n))).toEqual(before);
    // A checkpoint with loss-scaler state into the same program built without loss scaling says so.
    const plain = await wasmModule(compileToIR(SRC.replace(", loss_scale: dynamic(init: 1024, interval: 3)", ""), "ckpt.kiln").ir!);
    await expect(loadCheckpoint(plain, variant(() => {}))).rejects.toThrow(/loss-scaler state.*same options/);
  });

  it("kiln train --checkpoint then --resume continues from the saved loss scale", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-"));
    const file = join(dir, "t.kiln");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(file, SRC);
    const ck = join(dir, "ck.safetensors");
    const first = await runCli(["train", file, "--steps", "2", "--batch", "1", "--precision", "mixed-f16", "--checkpoint", ck]);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/saved the training state \(weights, optimizer state, loss scaler\) to .*loss scale 1024 after 2 clean steps/);
    const second = await runCli(["train", file, "--steps", "1", "--batch", "1", "--precision", "mixed-f16", "--resume", ck]);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/resumed from .*loss scale 1024 after 2 clean steps/);
    expect(readFileSync(ck).length).toBeGreaterThan(0);
    // A missing or foreign checkpoint is an error naming the flag and the file, not a stack trace.
    const missing = await runCli(["train", file, "--steps", "1", "--resume", join(dir, "none.safetensors")]);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/--resume .*none\.safetensors: could not read/);
    const foreign = await runCli(["train", "dsl-examples/mlp_train.kiln", "--steps", "1", "--resume", ck]);
    expect(foreign.code).not.toBe(0);
    expect(foreign.err).toMatch(/--resume .*: loadCheckpoint: tensor "M\.\w+" is not a param/);
  });
});

const env = await webgpuEnv("training checkpoints on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("training checkpoints on WebGPU", { timeout: 180_000 }, () => {
  it("a wasm checkpoint resumes on WebGPU and the two runs agree", async () => {
    const a = await wasmModule(ir());
    for (const v of XS.slice(0, 3)) a.call("T.step", x(v));
    const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-gpu-"));
    await saveCheckpoint(a, join(dir, "a.safetensors"));
    const g = await loadMode(env, ir(), modesOf(env)[0]!, "ckpt");
    await loadCheckpoint(g, join(dir, "a.safetensors"));
    for (const v of XS.slice(3)) {
      a.call("T.step", x(v));
      const r = g.call("T.step", x(v));
      await (Array.isArray(r) ? r[0]! : r).read();
    }
    for (const n of ["T.scaler.scale", "T.scaler.good_steps"]) expect(Array.from((await g.getParam(n)).data as Float32Array), n).toEqual(Array.from(a.getParam(n).data as Float32Array));
    // Same f16 matmuls and f32 updates on both backends: equal to f32 rounding of the 2-step update.
    const gw = (await g.getParam("M.w")).data as Float32Array, aw = a.getParam("M.w").data as Float32Array;
    for (let i = 0; i < aw.length; i++) expect(Math.abs(gw[i]! - aw[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(aw[i]!)));
    g.dispose();
  });
});
