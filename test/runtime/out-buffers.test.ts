// options.out (runtime/out-buffers.ts): results written into the caller's buffers, reused across calls. Values
// must equal a fresh-output call's bit for bit and the float64 reference; the returned Tensor's data is the
// caller's buffer; every bad buffer is a KilnError naming the output, expected and actual, thrown before any
// kernel or param update runs.
import { beforeAll, describe, expect, test } from "vitest";
import { loadKilnModule, Tensor, type KilnFunction, type KilnModule } from "../../runtime/index.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, graphOf, irOf, lcgInput, wasmModule } from "../helpers/backend.js";
import { expectKilnError, kernelsWasm, testManifest } from "./helpers.js";

type Hand = { Net: { forward: KilnFunction; stats: KilnFunction }; addi: KilnFunction };

const SRC = `
fn f(x: f32[B, 9]) -> f32[B, 9] { return softmax(x, axis: -1) }
model M {
  param w: f32[3] = zeros()
  fn loss(x: f32[3]) -> f32 { return sum(w * x) }
}
train T {
  model: M
  loss: loss
  optimizer: sgd(lr: 0.5)
}
`;

let hand: KilnModule & Hand;
let m: KilnModule;
const ir = irOf(SRC);
beforeAll(async () => {
  hand = await loadKilnModule<Hand>(testManifest(), await kernelsWasm());
  m = await wasmModule(ir);
}, 60_000);

const input = (rows: number, seed: number) => lcgInput([rows, 9], seed);
const asTensor = (i: { shape: number[]; data: number[] }) => new Tensor("f32", i.shape, i.data);

describe("options.out", () => {
  test("softmax rows into a reused buffer: the fresh call's bits, the reference's values, the caller's array", () => {
    const buf = new Float32Array(4 * 9);
    for (const seed of [1, 2, 3]) {
      const x = input(4, seed);
      const fresh = m.call("f", { x: asTensor(x) }) as Tensor;
      const y = m.call("f", { x: asTensor(x) }, { out: { result: buf } }) as Tensor;
      expect(y.data).toBe(buf);
      expect(y.shape).toEqual([4, 9]);
      expect(Array.from(buf)).toEqual(Array.from(fresh.data));
      const ref = evaluateGraph(graphOf(ir, "f"), { x }, new Map())[0]!;
      expectClose(y, ref, `softmax seed ${seed}`, 4e-6, 1e-30);
    }
  });

  test("a lone buffer for a one-output function; a Tensor comes back as the same object; dims from the call", () => {
    const x = input(2, 7);
    const fresh = m.call("f", { x: asTensor(x) }) as Tensor;
    const lone = new Float32Array(18);
    expect((m.call("f", { x: asTensor(x) }, { out: lone }) as Tensor).data).toBe(lone);
    expect(Array.from(lone)).toEqual(Array.from(fresh.data));
    const t = new Tensor("f32", [2, 9]);
    expect(m.call("f", { x: asTensor(x) }, { out: { result: t } })).toBe(t);
    expect(Array.from(t.data)).toEqual(Array.from(fresh.data));
    // A buffer sized for another batch is an error naming the shape at this call's dims.
    const err = expectKilnError(() => m.call("f", { x: asTensor(input(3, 1)) }, { out: lone }), `output "result"`, "expected f32[3, 9]", "a Float32Array of length 18");
    expect(err.code).toBe("output_shape");
  });

  test("the input's own array as the output buffer: the input is copied in before the result is copied out", () => {
    const x = input(3, 11);
    const fresh = m.call("f", { x: asTensor(x) }) as Tensor;
    const inPlace = Float32Array.from(x.data);
    expect((m.call("f", { x: inPlace }, { out: inPlace }) as Tensor).data).toBe(inPlace);
    expect(Array.from(inPlace)).toEqual(Array.from(fresh.data));
  });

  test("several outputs: a subset by name, the others fresh (hand-derived values)", () => {
    const total = new Float32Array(1);
    const r = hand.Net.stats({ x: [1, 2, 3, 4] }, { out: { total } }) as Tensor[] & { doubled: Tensor };
    expect(r[0]!.data).toBe(total);
    expect(total[0]).toBe(10); // 1 + 2 + 3 + 4
    expect(Array.from(r.doubled.data)).toEqual([2, 4, 6, 8]); // x + x
    const doubled = new Float32Array(4);
    const r2 = hand.Net.stats({ x: [2, 2, 2, 2] }, { out: { total, doubled } }) as Tensor[];
    expect([r2[0]!.data, r2[1]!.data]).toEqual([total, doubled]);
    expect(r2[1]!.data).toBe(doubled);
    expect([total[0], Array.from(doubled)]).toEqual([8, [4, 4, 4, 4]]);
  });

  test("an i32 output takes an Int32Array", () => {
    const c = new Int32Array(3);
    expect((hand.addi({ a: [1, 2, 3], b: [10, 20, 30] }, { out: { c } }) as Tensor).data).toBe(c);
    expect(Array.from(c)).toEqual([11, 22, 33]);
  });

  test("a training step writes its loss into the buffer; a bad buffer changes no param", () => {
    const mod = m;
    mod.setParam("M.w", [0, 0, 0]);
    const loss = new Float32Array(1);
    const x = [1, 2, 3];
    expectKilnError(() => mod.call("T.step", { x }, { out: { loss: new Float32Array(2) } }), `output "loss"`, "expected f32[]", "length 2");
    expect(Array.from(mod.getParam("M.w").data)).toEqual([0, 0, 0]);
    // w = 0: loss 0, then w -= 0.5 * x (the gradient of sum(w * x) is x); the second loss is -0.5 * |x|^2 = -7.
    expect((mod.call("T.step", { x }, { out: loss }) as Tensor).data).toBe(loss);
    expect(loss[0]).toBe(0);
    expect(Array.from(mod.getParam("M.w").data)).toEqual([-0.5, -1, -1.5]);
    mod.call("T.step", { x }, { out: loss });
    expect(loss[0]).toBe(-7);
  });

  test("every bad options.out is a KilnError naming the output, expected and actual; the buffer is untouched", () => {
    const x = { x: [1, 2, 3, 4] };
    const cases: [unknown, string, ...(string | RegExp)[]][] = [
      [{ nope: new Float32Array(1) }, "unknown_output", `unknown output "nope"`, `"total", "doubled"`],
      [{ total: new Int32Array(1) }, "output_dtype", `output "total"`, "expected f32[]", "an Int32Array"],
      [{ total: new Float64Array(1) }, "output_dtype", "a Float64Array"],
      [{ doubled: new Float32Array(5) }, "output_shape", `output "doubled"`, "expected f32[1, 4]", "a Float32Array of length 5"],
      [{ doubled: new Tensor("f32", [4]) }, "output_shape", "a Tensor of shape [4]"],
      [{ doubled: new Tensor("i32", [1, 4]) }, "output_dtype", "a Tensor of dtype i32"],
      [{ doubled: [0, 0, 0, 0] }, "output_dtype", `output "doubled"`, "expected f32[1, 4]"],
      [new Float32Array(4), "bad_option", "one buffer but the function has 2 outputs", "{ total: ..., doubled: ... }"],
      [5, "bad_option", "options.out must be an object"],
      [[new Float32Array(1)], "bad_option", "options.out must be an object"],
    ];
    for (const [out, code, ...fragments] of cases) {
      const err = expectKilnError(() => hand.Net.stats(x, { out: out as never }), "Net.stats", ...fragments);
      expect(err.code, String(fragments[0])).toBe(code);
    }
    const err = expectKilnError(() => hand.Net.stats(x, { out: { total: new Int32Array(1) } }));
    expect([err.tensor, err.expected, err.actual]).toEqual(["total", "f32[]", "an Int32Array"]);
    // Overlapping memory: the second output would overwrite the first.
    const shared = new Float32Array(5);
    const untouched = expectKilnError(
      () => hand.Net.stats(x, { out: { total: shared.subarray(3, 4), doubled: shared.subarray(1, 5) } }),
      `"total" and "doubled" overlapping memory`,
    );
    expect(untouched.code).toBe("bad_option");
    expect(Array.from(shared)).toEqual([0, 0, 0, 0, 0]);
    // Disjoint views of one ArrayBuffer are fine.
    hand.Net.stats(x, { out: { total: shared.subarray(0, 1), doubled: shared.subarray(1, 5) } });
    expect(Array.from(shared)).toEqual([10, 2, 4, 6, 8]);
  });
});
