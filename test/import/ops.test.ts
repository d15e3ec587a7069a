// kiln import, op by op: a hand-built ONNX graph (opset 17, no python) using every op the torch-exported models in
// transformers.test.ts and vision.test.ts do not reach, or reach only one way; goldens: onnxruntime-node.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { closeness, kiln, lcg, tmp } from "../export/helpers.js";

describe("kiln import: a hand-built graph of the tensor and layer ops", () => {
  it("Gather (embedding, constant index), Slice with steps, Split, Concat, Max/Min, Where, Less/Greater, Clip, LeakyRelu, unary math, Pow, AveragePool, GlobalMaxPool, ReduceSum/ReduceMax, Expand, ConstantOfShape of a symbolic shape, Cast, Squeeze, Trilu match onnxruntime-node", async () => {
    const { encodeModel, node, tensor, valueInfo, ElemType } = await import("../../compiler/export/onnx/proto.js");
    const F = ElemType.FLOAT, I = ElemType.INT64;
    const i64 = (name: string, v: number[]) => tensor(name, I, [v.length], BigInt64Array.from(v, BigInt));
    const scalar = (name: string, v: number) => tensor(name, F, [], Float32Array.of(v));
    const graph = {
      name: "ops",
      input: [valueInfo("x", F, ["N", 4, 6, 6]), valueInfo("ids", I, ["N", 3])],
      output: [
        valueInfo("emb", F, ["N", 3, 5]), valueInfo("pick", F, ["N", 6, 6]), valueInfo("sl", F, ["N", 3, 6, 3]), valueInfo("mm", F, ["N", 4, 6, 6]),
        valueInfo("wh", F, ["N", 4, 6, 6]), valueInfo("pool", F, ["N", 4, 3, 3]), valueInfo("red", F, ["N", 4]), valueInfo("ex", F, ["N", 4, 6, 6]),
        valueInfo("cs", F, ["N", 4, 6, 6]), valueInfo("gmp", F, ["N", 4]), valueInfo("tri", F, ["N", 4, 6, 6]),
      ],
      initializer: [
        tensor("table", F, [10, 5], lcg(50, 3)), tensor("two", I, [], BigInt64Array.of(2n)),
        i64("starts", [1, 0]), i64("ends", [4, 1000]), i64("axes", [1, 3]), i64("steps", [1, 2]), i64("sizes", [1, 3]),
        i64("hw", [2, 3]), tensor("k1", I, [], BigInt64Array.of(1n)), i64("expand", [1, 4, 1, 1]), scalar("tenth", 0.1), scalar("lo", -0.5), scalar("hi", 0.8), scalar("three", 3), scalar("zero", 0),
      ],
      node: [
        node("Gather", ["table", "ids"], ["emb"], "emb"),
        node("Gather", ["x", "two"], ["pick"], "pick", { axis: 1 }),
        node("Slice", ["x", "starts", "ends", "axes", "steps"], ["sl"], "sl"),
        node("Split", ["x", "sizes"], ["s1", "s2"], "split", { axis: 1 }),
        node("Concat", ["s2", "s1"], ["cat"], "cat", { axis: 1 }),
        node("Max", ["cat", "x"], ["mx"], "mx"),
        node("Min", ["mx", "hi"], ["mm"], "mm"),
        node("Less", ["x", "tenth"], ["lt"], "lt"),
        node("Sin", ["x"], ["sin"], "sin"),
        node("Clip", ["x", "lo"], ["clip"], "clip"),
        node("Where", ["lt", "sin", "clip"], ["w1"], "w1"),
        node("LeakyRelu", ["x"], ["lr"], "lr", { alpha: 0.2 }),
        node("Floor", ["x"], ["fl"], "fl"),
        node("Sign", ["x"], ["sg"], "sg"),
        node("Mul", ["fl", "sg"], ["fs"], "fs"),
        node("Cos", ["lr"], ["cos"], "cos"),
        node("Add", ["w1", "cos"], ["w2"], "w2"),
        node("Add", ["w2", "fs"], ["wh"], "wh"),
        node("AveragePool", ["x"], ["pool"], "pool", { kernel_shape: [2, 2], strides: [2, 2] }),
        node("ReduceSum", ["x", "hw"], ["red"], "red", { keepdims: 0 }),
        node("ReduceMax", ["x"], ["rmax"], "rmax", { axes: [1], keepdims: 1 }),
        node("Expand", ["rmax", "expand"], ["exp"], "exp"),
        node("Shape", ["x"], ["shape"], "shape"),
        node("ConstantOfShape", ["shape"], ["half"], "half", { value: { tensor: tensor("", F, [1], Float32Array.of(0.5)) } }),
        node("Add", ["exp", "half"], ["ex"], "ex"),
        node("Greater", ["x", "zero"], ["gt"], "gt"),
        node("Cast", ["gt"], ["gtf"], "gtf", { to: F }),
        node("Erf", ["x"], ["erf"], "erf"),
        node("Pow", ["erf", "three"], ["cube"], "cube"),
        node("Mul", ["gtf", "cube"], ["cs"], "cs"),
        node("GlobalMaxPool", ["x"], ["gm"], "gm"),
        node("Squeeze", ["gm", "hw"], ["gmp"], "gmp"),
        node("Trilu", ["x", "k1"], ["tri"], "tri"),
      ],
    };
    const dir = tmp();
    const file = join(dir, "ops.onnx");
    const bytes = encodeModel({ graph });
    writeFileSync(file, bytes);
    const r = await kiln("import", file, "--out", join(dir, "out"));
    expect(r.err).toBe("");
    const src = readFileSync(join(dir, "out", "ops.kiln"), "utf8");
    expect(src).toContain("fn forward(x: f32[N, 4, 6, 6], ids: i32[N, 3])");
    for (const s of ["embedding(ids, table)", "x[:, 1:, :, ::2]", "x[:, 2]", "x[:, :1]", "x[:, 1:]", "concat(", "maximum(", "minimum(", "where(", "clamp(x, min: (-0.5))",
      "avg_pool2d(x, 2)", "sum(x, axis: [2, 3])", "broadcast_to(", "full([N, 4, 6, 6], 0.5)", "cast(", "erf_out ** 3.0", "triu(x, diagonal: 1)"]) expect(src).toContain(s);
    const n = 2;
    const x = lcg(n * 4 * 36, 5, 2);
    const ids = Int32Array.of(0, 9, 4, 7, 7, 1);
    const sess = await ort.InferenceSession.create(bytes);
    const want = await sess.run({ x: new ort.Tensor("float32", x, [n, 4, 6, 6]), ids: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [n, 3]) });
    const c = compileToIR(src, "ops.kiln");
    expect(c.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const b = await buildWasm(c.ir!, "ops");
    const mod = await loadKilnModule(b.manifest, b.wasm);
    for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(dir, "out", "ops.safetensors"))).tensors)) mod.setParam(k, t);
    const got = mod.call("Ops.forward", { x, ids }, { N: n }) as unknown as { data: Float32Array }[];
    graph.output.forEach((o, i) => {
      const w = want[o.name!]!.data as Float32Array;
      expect(got[i]!.data.length, o.name!).toBe(w.length);
      expect(closeness(got[i]!.data, w), `${o.name}: ${got[i]!.data.slice(0, 4)} vs ${w.slice(0, 4)}`).toBeLessThanOrEqual(1);
    });
  });

  it("a decomposed LayerNorm and Erf GELU are fused into layer_norm and gelu, but not when an inner value is used elsewhere or the scale is not a vector", async () => {
    const { encodeModel, node, tensor, valueInfo, ElemType } = await import("../../compiler/export/onnx/proto.js");
    const F = ElemType.FLOAT;
    const scalar = (name: string, v: number) => tensor(name, F, [], Float32Array.of(v));
    const graph = {
      name: "fused",
      input: [valueInfo("x", F, ["N", 8])],
      output: [valueInfo("g", F, ["N", 8]), valueInfo("g2", F, ["N", 8]), valueInfo("e2", F, ["N", 8]), valueInfo("ln2", F, ["N", 8])],
      initializer: [tensor("gamma", F, [8], lcg(8, 1)), tensor("beta", F, [8], lcg(8, 2)), scalar("two", 2), scalar("eps", 1e-3), scalar("sqrt2", Math.SQRT2), scalar("one", 1), scalar("half", 0.5)],
      node: [
        node("ReduceMean", ["x"], ["m"], "m", { axes: [-1] }), node("Sub", ["x", "m"], ["d"], "d"), node("Pow", ["d", "two"], ["p"], "p"),
        node("ReduceMean", ["p"], ["v"], "v", { axes: [-1] }), node("Add", ["v", "eps"], ["a"], "a"), node("Sqrt", ["a"], ["s"], "s"),
        node("Div", ["d", "s"], ["n"], "n"), node("Mul", ["n", "gamma"], ["y1"], "y1"), node("Add", ["y1", "beta"], ["ln"], "ln"),
        node("Div", ["ln", "sqrt2"], ["q"], "q"), node("Erf", ["q"], ["e"], "e"), node("Add", ["e", "one"], ["b"], "b"), node("Mul", ["ln", "b"], ["c"], "c"), node("Mul", ["c", "half"], ["g"], "g"),
        // The same GELU on x, but its Erf is also an output: left as it is.
        node("Div", ["x", "sqrt2"], ["q2"], "q2"), node("Erf", ["q2"], ["e2"], "e2"), node("Add", ["one", "e2"], ["b2"], "b2"), node("Mul", ["b2", "x"], ["c2"], "c2"), node("Mul", ["half", "c2"], ["g2"], "g2"),
        // A LayerNorm whose scale and shift are scalars, not vectors over the last axis: left spelled out.
        node("ReduceMean", ["x"], ["m3"], "m3", { axes: [-1] }), node("Sub", ["x", "m3"], ["d3"], "d3"), node("Pow", ["d3", "two"], ["p3"], "p3"),
        node("ReduceMean", ["p3"], ["v3"], "v3", { axes: [-1] }), node("Add", ["v3", "eps"], ["a3"], "a3"), node("Sqrt", ["a3"], ["s3"], "s3"),
        node("Div", ["d3", "s3"], ["n3"], "n3"), node("Mul", ["n3", "half"], ["y3"], "y3"), node("Add", ["y3", "one"], ["ln2"], "ln2"),
      ],
    };
    const dir = tmp();
    const file = join(dir, "fused.onnx");
    const bytes = encodeModel({ graph });
    writeFileSync(file, bytes);
    expect((await kiln("import", file, "--out", join(dir, "out"))).err).toBe("");
    const src = readFileSync(join(dir, "out", "fused.kiln"), "utf8");
    expect(src).toContain("let ln = layer_norm(x, gamma, beta, eps: 0.001)");
    expect(src).toContain("let g = gelu(ln)");
    expect(src).toContain("erf(q2)");
    expect(src.match(/\bsqrt\(/g)).toHaveLength(1);
    expect(src.match(/layer_norm\(/g)).toHaveLength(1);
    const x = lcg(3 * 8, 4, 3);
    const want = await (await ort.InferenceSession.create(bytes)).run({ x: new ort.Tensor("float32", x, [3, 8]) });
    const b = await buildWasm(compileToIR(src, "fused.kiln").ir!, "fused");
    const mod = await loadKilnModule(b.manifest, b.wasm);
    for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(dir, "out", "fused.safetensors"))).tensors)) mod.setParam(k, t);
    const got = mod.call("Fused.forward", { x }, { N: 3 }) as unknown as { data: Float32Array }[];
    graph.output.forEach((o, i) => expect(closeness(got[i]!.data, want[o.name!]!.data as Float32Array), o.name!).toBeLessThanOrEqual(1));
  });
});
