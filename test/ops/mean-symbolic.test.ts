// mean over symbolic dims: value and gradient against PyTorch (test/ops/mean-symbolic-goldens.json, written by
// scripts/torch-mean-symbolic-goldens.py with torch 1.13) and the float64 reference interpreter, one loaded module
// called at two sizes in turn (the count is written per call); the gradient divides by a dim_size (no broadcast of
// ones, no reduction step: the GPT training step keeps no full-size broadcast); dim_size in the ONNX export
// (onnxruntime at two sizes) and the torch export (python3-torch, skipped with a printed reason when absent).
import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { exportOnnx } from "../../compiler/export/onnx/index.js";
import { exportTorch } from "../../compiler/export/torch/index.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose } from "../helpers/backend.js";
import { python, pythonWith, tmp } from "../export/helpers.js";

interface Case { name: keyof typeof BODY; dims: Record<string, number>; xShape: number[]; x: number[]; w: number[]; value: number; grad: number[] }
const GOLD = JSON.parse(readFileSync(new URL("./mean-symbolic-goldens.json", import.meta.url), "utf8")) as { source: string; cases: Case[] };

// The same losses as the golden script; x's type, w's type, the loss.
const BODY = {
  batch: ["f32[B, 3]", "f32[3]", "sum(mean(x, axis: 0) * w)"],
  batch_and_known: ["f32[B, 4, 3]", "f32[4]", "sum(mean(x, axis: [0, 2]) * w)"],
  two_symbolic: ["f32[B, T]", "f32[1]", "mean(x * x * w)"],
  keepdims: ["f32[4, T]", "f32[4, 1]", "sum(mean(x, axis: 1, keepdims: true) * w)"],
  product_dim: ["f32[B, 3]", "f32[2]", "mean(reshape(x, [B * 3]) * reshape(x, [B * 3])) * sum(w)"],
} as const;
const src = (name: keyof typeof BODY) => {
  const [xt, wt, body] = BODY[name];
  return `
fn f(x: ${xt}, w: ${wt}) -> f32 { return ${body} }
fn g(x: ${xt}, w: ${wt}) -> (f32, ${xt}) { return value_and_grad(f)(x, w) }
`;
};
const ir = (s: string, skip: string[] = []): IRModule => {
  const r = compileToIR(s, "mean.kiln", [], skip);
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  return r.ir;
};
const wShape = (c: Case) => (c.name === "keepdims" ? [4, 1] : [c.w.length]);
const inputsOf = (c: Case) => ({ x: { dtype: "f32" as const, shape: c.xShape, data: c.x }, w: { dtype: "f32" as const, shape: wShape(c), data: c.w } });
const names = [...new Set(GOLD.cases.map((c) => c.name))];

describe("mean over symbolic dims", () => {
  for (const name of names) {
    it(`${name}: value and gradient vs PyTorch and the reference at two sizes, one module; the count is a dim_size`, async () => {
      const m = ir(src(name));
      const g = m.functions.find((f) => f.name === "g")!;
      // The count: one dim_size, no broadcast of ones summed (it was sum(broadcast_to(1, x.shape))).
      expect(g.nodes.filter((n) => n.op === "dim_size").length).toBe(1);
      expect(g.nodes.filter((n) => n.op === "broadcast_to" && n.type.shape.length >= 1 && g.nodes[n.inputs[0]!]!.op === "const")).toEqual([]);
      // (The gradient itself, broadcast back to x's shape, is a function output: its copy stays.)
      const b = await buildWasm(m, "t", { wat: false });
      const gm = b.manifest.functions.find((f) => f.name === "g")!;
      expect(gm.values.filter((v) => v.source.kind === "dim").length).toBe(1);
      const mod = await loadKilnModule(b.manifest, b.wasm);
      try {
        // Both sizes, then the first again: the count follows each call's dims.
        const cases = GOLD.cases.filter((c) => c.name === name);
        for (const c of [...cases, cases[0]!]) {
          const what = `${name} at ${JSON.stringify(c.dims)}`;
          const ins = inputsOf(c);
          const out = mod.call("g", { x: new Tensor("f32", ins.x.shape, ins.x.data), w: new Tensor("f32", ins.w.shape, ins.w.data) }) as Tensor[];
          expectClose(out[0]!, { dtype: "f32", shape: [], data: [c.value] }, `${what}: value vs torch`, 1e-5, 1e-6);
          expectClose(out[1]!, { dtype: "f32", shape: c.xShape, data: c.grad }, `${what}: gradient vs torch`, 1e-5, 1e-7);
          // The reference on the compiled IR (its dim_size) and on the IR before simplify.
          for (const r of [evaluateGraph(g, ins, new Map()), evaluateGraph(ir(src(name), ["simplify"]).functions.find((f) => f.name === "g")!, ins, new Map())]) {
            expectClose(out[0]!, r[0]!, `${what}: value vs reference`, 1e-5, 1e-6);
            expectClose(out[1]!, r[1]!, `${what}: gradient vs reference`, 1e-5, 1e-7);
          }
        }
      } finally {
        mod.dispose();
      }
    });
  }

  it("the GPT training step keeps no broadcast_to: the cross-entropy mean's count is a dim_size", () => {
    const m = ir(readFileSync(new URL("../../dsl-examples/gpt_char.kiln", import.meta.url), "utf8"));
    const step = m.functions.find((f) => f.name === "Train.step")!;
    // Before: broadcast_to(1, [64*B]) summed for the count, and the seed broadcast to [64*B] then reshaped.
    expect(step.nodes.filter((n) => n.op === "broadcast_to").map((n) => n.type.shape)).toEqual([]);
    expect(step.nodes.filter((n) => n.op === "dim_size").map((n) => n.attrs)).toEqual([{ dims: ["64*B"], dtype: "f32" }]);
  });

  it("ONNX export: the gradient's count from the input's shape, in onnxruntime at two sizes", async () => {
    const m = ir(src("batch_and_known"));
    const bytes = exportOnnx(m, { tensors: new Map(), quantized: new Map() }).get("g.onnx")!;
    const session = await ort.InferenceSession.create(bytes);
    for (const c of GOLD.cases.filter((q) => q.name === "batch_and_known")) {
      const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from(c.x), c.xShape), w: new ort.Tensor("float32", Float32Array.from(c.w), wShape(c)) });
      const [value, grad] = Object.values(out);
      expectClose(new Tensor("f32", [], value!.data as Float32Array), { dtype: "f32", shape: [], data: [c.value] }, `onnx value at B=${c.dims.B}`, 1e-5, 1e-6);
      expectClose(new Tensor("f32", c.xShape, grad!.data as Float32Array), { dtype: "f32", shape: c.xShape, data: c.grad }, `onnx gradient at B=${c.dims.B}`, 1e-5, 1e-7);
    }
  });

  const HAVE_TORCH = pythonWith("mean over symbolic dims, torch export", ["torch"]);
  it.skipIf(!HAVE_TORCH)("torch export: the count from the inputs' shapes, as the goldens", () => {
    for (const name of ["two_symbolic", "batch_and_known"] as const) {
      const files = exportTorch(ir(src(name)), src(name), "mean.kiln", new Map());
      const dir = tmp();
      mkdirSync(join(dir, "mean_torch"));
      for (const [f, body] of files) writeFileSync(join(dir, "mean_torch", f), body);
      const cases = GOLD.cases.filter((c) => c.name === name);
      const got = JSON.parse(python(`import sys, json, torch
sys.path.insert(0, sys.argv[1])
import mean_torch
out = []
for c in json.loads(sys.argv[2]):
    x = torch.tensor(c["x"], dtype=torch.float32).reshape(c["xShape"])
    w = torch.tensor(c["w"], dtype=torch.float32).reshape(c["wShape"])
    v, gx = mean_torch.g(x, w)
    out.append({"value": v.item(), "grad": gx.reshape(-1).tolist()})
print(json.dumps(out))`, [dir, JSON.stringify(cases.map((c) => ({ ...c, wShape: wShape(c) })))])) as { value: number; grad: number[] }[];
      cases.forEach((c, k) => {
        expectClose(new Tensor("f32", [], Float32Array.of(got[k]!.value)), { dtype: "f32", shape: [], data: [c.value] }, `torch export ${name} value`, 1e-5, 1e-6);
        expectClose(new Tensor("f32", c.xShape, Float32Array.from(got[k]!.grad)), { dtype: "f32", shape: c.xShape, data: c.grad }, `torch export ${name} gradient`, 1e-5, 1e-7);
      });
    }
  });
});
