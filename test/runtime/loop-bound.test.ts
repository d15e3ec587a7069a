// A `for` loop whose run-time trip count exceeds its `max:` fails the call with a KilnError naming the loop and
// the count (issue 16.8: it used to return after max iterations), on wasm and in the reference interpreter;
// counts within the bound, loops in branches not taken, and inlined loops behave as before.
import { describe, expect, it } from "vitest";
import { irOf, runBoth } from "../helpers/backend.js";
import type { KilnError } from "../../runtime/errors.js";

const SRC = `
fn acc(x: f32, n: i32) -> f32 {
  let s = x
  for i in 0..n, max: 8 {
    s = s + 1
  }
  return s
}
fn twice(x: f32, n: i32) -> f32 { return acc(x, n) + acc(x, n) }
fn maybe(x: f32, n: i32) -> f32 {
  let s = x
  if x > 0 {
    s = acc(x, n)
  }
  return s
}`;

const args = (x: number, n: number) => ({ x: { dtype: "f32" as const, shape: [], data: [x] }, n: { dtype: "i32" as const, shape: [], data: [n] } });

async function failure(fn: string, x: number, n: number): Promise<string[]> {
  const ir = irOf(SRC);
  const out: string[] = [];
  try {
    await runBoth(ir, fn, args(x, n));
  } catch (e) {
    out.push(`${(e as KilnError).code}: ${(e as Error).message}`);
  }
  return out;
}

describe("run-time loop bounds", () => {
  it("a trip count within max: runs every iteration", async () => {
    const { wasm, ref } = await runBoth(irOf(SRC), "acc", args(0.5, 8));
    expect(Number(wasm[0].data[0])).toBe(8.5);
    expect(ref[0].data[0]).toBe(8.5);
    expect(wasm).toHaveLength(1);
    expect(ref).toHaveLength(1);
  });

  it("a trip count above max: is an error naming the loop and the count (wasm)", async () => {
    const [msg] = await failure("acc", 0.5, 12);
    expect(msg).toMatch(/^loop_bound: acc: the loop for i in 0\.\.n, max: 8 \(test\.kiln:4:3\) needs 12 iterations, more than its max: 8/);
  });

  it("the reference interpreter reports it too", async () => {
    const { evaluateGraph } = await import("../../compiler/reference/interpreter.js");
    const g = irOf(SRC).functions.find((f) => f.name === "twice")!;
    expect(() => evaluateGraph(g, args(1, 9), {}, {})).toThrow(/the loop for i in 0\.\.n, max: 8 \(test\.kiln:4:3\) needs 9 iterations/);
  });

  it("an inlined loop is checked at each call site; a branch not taken is not", async () => {
    expect(await failure("twice", 1, 9)).toHaveLength(1);
    const { wasm, ref } = await runBoth(irOf(SRC), "maybe", args(-1, 100));
    expect(Number(wasm[0].data[0])).toBe(-1);
    expect(ref[0].data[0]).toBe(-1);
    expect(await failure("maybe", 1, 100)).toHaveLength(1);
  });
});
