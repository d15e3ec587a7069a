// ONNX export of strided conv2d and pooling over symbolic H and W: the model (Conv/MaxPool/AveragePool on named
// dims) runs in onnxruntime at two sizes, even and odd, with Kiln's wasm outputs; the output's named dims are the
// derived ones ("(H+3)/4").
import { describe, expect, it } from "vitest";
import * as ort from "onnxruntime-node";
import { exportOnnx } from "../../compiler/export/onnx/index.js";
import { decodeModel } from "../../compiler/export/onnx/proto.js";
import { Tensor } from "../../runtime/tensor.js";
import { irOf, wasmModule } from "../helpers/backend.js";

const SRC = `
fn f(x: f32[N, 2, H, W], w: f32[3, 2, 3, 3], b: f32[3]) -> f32[N, 3, (H + 3) / 4, (W + 3) / 4] {
  return avg_pool2d(max_pool2d(relu(conv2d(x, w, b, stride: 2, padding: 1)), 2, stride: 1, padding: 1), 2)
}`;

describe("ONNX export over symbolic strided windows", () => {
  it("runs in onnxruntime at 7x9 and 8x6 with Kiln's outputs", async () => {
    const ir = irOf(SRC);
    const bytes = [...exportOnnx(ir, { tensors: new Map(), quantized: new Map() }).values()][0]!;
    const dims = decodeModel(bytes).graph!.output![0]!.type!.tensorType!.shape!.dim!;
    expect(dims.map((d) => d.dimParam ?? Number(d.dimValue))).toEqual(["N", 3, "(H+3)/4", "(W+3)/4"]);
    const session = await ort.InferenceSession.create(bytes);
    const mod = await wasmModule(ir);
    for (const [H, W] of [[7, 9], [8, 6]]) {
      const x = Float32Array.from({ length: 2 * 2 * H * W }, (_, k) => Math.sin(0.37 * k));
      const w = Float32Array.from({ length: 54 }, (_, k) => Math.cos(k) * 0.3), b = Float32Array.from([0.1, -0.2, 0]);
      const got = Object.values(await session.run({ x: new ort.Tensor("float32", x, [2, 2, H, W]), w: new ort.Tensor("float32", w, [3, 2, 3, 3]), b: new ort.Tensor("float32", b, [3]) }))[0]!;
      const want = mod.call("f", { x: new Tensor("f32", [2, 2, H, W], x), w: new Tensor("f32", [3, 2, 3, 3], w), b: new Tensor("f32", [3], b) }) as Tensor;
      // By hand: conv -> floor((H + 1) / 2); the 2x2 stride-1 pool with padding 1 adds one; the 2x2 pool halves.
      expect(got.dims).toEqual([2, 3, Math.floor((Math.floor((H + 1) / 2) + 1) / 2), Math.floor((Math.floor((W + 1) / 2) + 1) / 2)]);
      expect(want.shape).toEqual([...got.dims]);
      const g = got.data as Float32Array, k = want.data as Float32Array;
      g.forEach((v, i) => expect(Math.abs(v - k[i]!), `[${i}] at ${H}x${W}`).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(k[i]!)));
    }
  });
});
