// Special values on WebGPU, where WGSL leaves behaviour to the driver (implementations may assume no NaN or
// infinity; integer x / 0 returns x; f32 -> i32 is not saturating everywhere): Kiln's shaders must still give
// the reference's (and wasm's) answers. Skips, saying why, without an adapter.
import { afterAll, describe, it } from "vitest";
import type { PrimOp } from "../../compiler/ops/types.js";
import type { DType } from "../../compiler/ir/types.js";
import { expectClose } from "../helpers/backend.js";
import { oneOpModule } from "../ops/op-cases.js";
import { runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("special values on WebGPU");
afterAll(() => env.h?.device.destroy());

const F = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 0.999, 1e-30, 1e-45, 88.7, 89, -104, 3e9, -3e9, 0.5, -2.5, 3];
const I = [0, 1, -1, 7, -7, 2147483647, -2147483648, 255, -129];

interface Edge { op: PrimOp; ins: { dtype: DType; data: number[] }[]; attrs?: object; rtol?: number }

/** Every pair (a, b) of the lists, as two inputs of equal length. */
function pairs(dtype: DType, xs: number[], ys = xs): { dtype: DType; data: number[] }[] {
  const a: number[] = [], b: number[] = [];
  for (const x of xs) for (const y of ys) { a.push(x); b.push(y); }
  return [{ dtype, data: a }, { dtype, data: b }];
}

const EDGES: Edge[] = [
  { op: "exp", ins: [{ dtype: "f32", data: F }], rtol: 3e-6 },
  { op: "log", ins: [{ dtype: "f32", data: F }], rtol: 3e-6 },
  { op: "tanh", ins: [{ dtype: "f32", data: F }], rtol: 3e-6 },
  { op: "sigmoid", ins: [{ dtype: "f32", data: F }], rtol: 3e-6 },
  // relu(NaN) is NaN on every backend and in the reference, like Math.max.
  { op: "relu", ins: [{ dtype: "f32", data: F }] },
  // -0 as a base keeps its sign for odd integer exponents, as Math.pow does: (-0) ** -1 = -inf.
  { op: "pow", ins: pairs("f32", [NaN, 0, -0, 0.999, 2, -2, Infinity], [0, 1, 2, 3, -1, 0.5, 1000, NaN]), rtol: 3e-5 },
  { op: "maximum", ins: pairs("f32", [NaN, 1, -Infinity]) },
  { op: "minimum", ins: pairs("f32", [NaN, 1, Infinity]) },
  { op: "div", ins: pairs("i32", I) },
  { op: "add", ins: pairs("i32", I) },
  { op: "mul", ins: pairs("i32", I) },
  { op: "abs", ins: [{ dtype: "i32", data: I }] },
  { op: "neg", ins: [{ dtype: "i32", data: I }] },
  { op: "cast", ins: [{ dtype: "f32", data: F }], attrs: { to: "i32" } },
  { op: "cast", ins: [{ dtype: "f32", data: F }], attrs: { to: "bool" } },
  { op: "cast", ins: [{ dtype: "f32", data: F }], attrs: { to: "u8" } },
  { op: "cast", ins: [{ dtype: "i32", data: I }], attrs: { to: "i8" } },
  { op: "max", ins: [{ dtype: "f32", data: [1, NaN, 2] }], attrs: { axes: [0], keepdims: false } },
  { op: "min", ins: [{ dtype: "f32", data: [-Infinity, 3] }], attrs: { axes: [0], keepdims: false } },
  { op: "max", ins: [{ dtype: "i32", data: [-2147483648, -5] }], attrs: { axes: [0], keepdims: false } },
];

describe.skipIf(!env.h)("special values on WebGPU match the reference", { timeout: 30_000 }, () => {
  for (const e of EDGES) {
    const name = `${e.op}(${e.ins.map((i) => i.dtype).join(", ")})${e.attrs ? " " + JSON.stringify(e.attrs) : ""}`;
    it(name, async () => {
      const ir = oneOpModule(e.op, { ins: e.ins.map((i) => ({ dtype: i.dtype, shape: [i.data.length] })), attrs: e.attrs });
      const inputs = Object.fromEntries(e.ins.map((i, k) => [`x${k}`, { dtype: i.dtype, shape: [i.data.length], data: i.data.map((v) => (i.dtype === "f32" ? Math.fround(v) : v)) }]));
      const { gpu, ref } = await runGpuVsRef(env, ir, "f", inputs);
      // Rounded to f32 first: a float64 result beyond the f32 range is infinity in f32.
      const want = ref[0]!.dtype === "f32" ? { ...ref[0]!, data: ref[0]!.data.map(Math.fround) } : ref[0]!;
      expectClose(gpu[0]!, want, `${name} on WebGPU`, e.rtol ?? 2e-6, 1e-37);
    });
  }
});
