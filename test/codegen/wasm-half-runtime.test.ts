// f16/bf16 function inputs and outputs through the whole wasm path (compile, runtime binding, kernels, Tensors):
// Uint16Array bit patterns in and out, plain numbers encoded, wrong typed arrays refused with a KilnError.
import { describe, it, expect } from "vitest";
import { KilnError } from "../../runtime/errors.js";
import { Tensor } from "../../runtime/tensor.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { irOf, wasmModule } from "../helpers/backend.js";
import { checkWasmDtypes } from "../../compiler/compile.js";
import { DiagnosticBag, formatDiagnostics } from "../../compiler/diagnostics.js";

const SRC = `
fn scale16(x: f16[N], y: f32[N]) -> f16[N] {
  return cast(cast(x, f32) * y, f16)
}
fn widen16(x: bf16[N]) -> f32[N] {
  return cast(x, f32) + 1
}
fn copy16(x: f16[R, C]) -> f16[C, R] {
  return permute(x, [1, 0])
}
`;

const MODEL = `
model Half {
  param w: f16[4] = zeros()
  fn apply(x: f16[4]) -> f16[4] {
    return x * w + x
  }
}
`;

describe("f16/bf16 tensors through the wasm runtime", () => {
  it("f16 params: Uint16Array bit patterns in setParam/getParam, wrong arrays refused", async () => {
    const mod = await wasmModule(irOf(MODEL));
    const w = mod.getParam("Half.w");
    expect(w.dtype).toBe("f16");
    expect(Array.from(w.data)).toEqual([0, 0, 0, 0]);
    mod.setParam("Half.w", [0.5, -1, 2, 1e5]); // 1e5 overflows f16: Inf
    expect(Array.from(mod.getParam("Half.w").data)).toEqual([0x3800, 0xbc00, 0x4000, 0x7c00]);
    mod.setParam("Half.w", new Tensor("f16", [4], Uint16Array.from([0x3800, 0xbc00, 0x4000, 0x3c00])));
    // x * w + x with x = [2, 2, 2, 2] and w = [0.5, -1, 2, 1]: [3, 0, 6, 4].
    const y = mod.call("Half.apply", Uint16Array.from([0x4000, 0x4000, 0x4000, 0x4000])) as Tensor;
    expect(y.toFlatArray()).toEqual([3, 0, 6, 4]);
    expect(() => mod.setParam("Half.w", new Float32Array(4))).toThrow(KilnError);
    expect(() => mod.setParam("Half.w", new Float32Array(4))).toThrow(/param "Half\.w" expected f16\[4\] .* but got a Float32Array \(pass a Uint16Array/);
  });

  it("takes and returns Uint16Array bit patterns; numbers are encoded", async () => {
    const mod = await wasmModule(irOf(SRC));
    const xs = [1, -2.5, 65504, 0.1, 3, 1e-7, -0];
    const x16 = Uint16Array.from(xs.map(f32ToF16Bits));
    const y = Float32Array.from([2, 2, 2, 3, 0.5, 1, 1]);
    const out = mod.call("scale16", { x: x16, y }) as Tensor;
    expect(out.dtype).toBe("f16");
    expect(out.data).toBeInstanceOf(Uint16Array);
    // Each element: f16(x) * y in f32, rounded to f16 (65504 * 2 overflows to Inf; 0.1 is 0.0999755859375 in f16,
    // times 3 = 0.2999267578125 = 1228.5 * 2^-12, a tie on the f16 grid (ulp 2^-12 in [0.25, 0.5)), to the even
    // 1228 * 2^-12 = 0.2998046875 = 0x34cc).
    const want = xs.map((v, i) => f32ToF16Bits(Math.fround(f16BitsToF32(f32ToF16Bits(v)) * y[i]!)));
    expect(Array.from(out.data)).toEqual(want);
    expect(out.data[3]).toBe(0x34cc);
    expect(out.toFlatArray()[2]).toBe(Infinity);
    // Plain numbers are encoded to f16 by the binding.
    const again = mod.call("scale16", { x: xs, y: Array.from(y) }) as Tensor;
    expect(Array.from(again.data)).toEqual(want);

    const b = mod.call("widen16", { x: Uint16Array.from([0x3f80, 0xc000, 0x7f80]) }) as Tensor; // 1, -2, Inf
    expect(Array.from(b.data)).toEqual([2, -1, Infinity]);
    expect(Array.from((mod.call("widen16", new Tensor("bf16", [2], [0.5, 3])) as Tensor).data)).toEqual([1.5, 4]);
    expect(bf16BitsToF32(f32ToBf16Bits(3))).toBe(3);

    // Layout ops on f16 move the raw 16-bit patterns (NaN payloads included).
    const raw = Uint16Array.from([0x3c00, 0x7e01, 0x8001, 0xfc00, 0x0400, 0x7bff]);
    const t = mod.call("copy16", new Tensor("f16", [2, 3], raw)) as Tensor;
    expect(t.shape).toEqual([3, 2]);
    expect(Array.from(t.data)).toEqual([0x3c00, 0xfc00, 0x7e01, 0x0400, 0x8001, 0x7bff]);
  });

  it("refuses a wrong typed array, naming the tensor and both dtypes", async () => {
    const mod = await wasmModule(irOf(SRC));
    const call = () => mod.call("scale16", { x: new Float32Array(3), y: new Float32Array(3) });
    expect(call).toThrow(KilnError);
    expect(call).toThrow(/input "x" expected f16\[N\] but got a Float32Array \(f32\); pass a Uint16Array/);
    expect(() => mod.call("widen16", new Tensor("f16", [2]))).toThrow(/input "x" expected bf16\[N\] but got a Tensor of dtype f16/);
    expect(() => new Tensor("f16", [2], new Float32Array(2))).toThrow(/dtype f16 needs a Uint16Array but got a Float32Array/);
  });
});

describe("what the wasm backend still refuses", () => {
  it("a reduction over f16 values is a K502 diagnostic at the reduction, with the f32 rewrite as hint", () => {
    const src = "fn s(x: f16[N]) -> f16 {\n  return sum(x)\n}\nfn ok(x: f16[N]) -> f32 {\n  return sum(cast(x, f32))\n}\n";
    const diags = new DiagnosticBag();
    checkWasmDtypes(irOf(src), diags);
    expect(diags.items.map((d) => [d.code, d.span.line])).toEqual([["K502", 2]]);
    const text = formatDiagnostics(diags.sorted(), { "test.kiln": src });
    expect(text).toContain("does not reduce f16 values yet (sum in s)");
    expect(text).toContain("sum(cast(x, f32))");
  });
});
