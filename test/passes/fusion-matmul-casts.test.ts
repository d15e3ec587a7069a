// Float casts folded into matmul operand loading (codegen/plan-matmul.ts): a cast between f32, f16 and bf16 whose
// every use is a matmul operand becomes aDtype/bDtype (the buffer read) and aRound/bRound (rounding after the
// load), with or without a folded transpose; a cast with another use keeps its kernel. No cast-only kernel.
import { describe, expect, it } from "vitest";
import { planModule } from "../../compiler/codegen/plan.js";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { expectClose, irOf, runBoth, lcgInput as rand } from "../helpers/backend.js";
import { f16BitsToF32, f32ToF16Bits } from "../../runtime/dtype.js";

function stepsOf(src: string, fn = "f") {
  const plan = planModule(irOf(src));
  const f = plan.functions.find((x) => x.name === fn)!;
  return { f, steps: f.steps.map((s) => ({ ...s, spec: plan.kernels.find((k) => k.name === s.kernel)!.spec })) };
}
const mm = (p: ReturnType<typeof stepsOf>) => p.steps.find((s) => s.spec.kind === "matmul")!;

describe("operand casts folded into the matmul", () => {
  it("narrowing casts: the matmul reads the f32 buffers and rounds each loaded element", () => {
    for (const t of ["f16", "bf16"] as const) {
      const p = stepsOf(`fn f(x: f32[M, K], w: f32[K, N]) -> f32[M, N] { return cast(x, ${t}) @ cast(w, ${t}) }`);
      const m = mm(p);
      const k = m.spec as MatmulKernel;
      expect(k.aDtype ?? k.dtype, t).toBe("f32");
      expect(k.bDtype ?? k.dtype, t).toBe("f32");
      expect([k.aRound, k.bRound], t).toEqual([t, t]);
      // The matmul reads the function inputs themselves; the casts have no buffer and no step.
      expect(m.buffers.slice(0, 2)).toEqual([0, 1]);
      expect(p.steps.some((s) => s.ops.includes("cast")), t).toBe(false);
      expect(p.f.values.filter((v) => v.source.kind === "fused").length, t).toBe(2);
    }
  });

  it("widening casts: the matmul reads the f16 buffers, no rounding", () => {
    const p = stepsOf(`fn f(x: f16[M, K], w: bf16[K, N]) -> f32[M, N] { return cast(x, f32) @ cast(w, f32) }`);
    const k = mm(p).spec as MatmulKernel;
    expect(p.steps.length).toBe(1);
    expect(k).toMatchObject({ dtype: "f32", aDtype: "f16", bDtype: "bf16" });
    expect(k.aRound).toBeUndefined();
    expect(k.bRound).toBeUndefined();
  });

  it("a transpose and a cast fold together, in either order", () => {
    for (const w of ["transpose(cast(w, f16))", "cast(transpose(w), f16)"]) {
      const p = stepsOf(`fn f(x: f32[M, K], w: f32[N, K]) -> f32[M, N] { return cast(x, f16) @ ${w} }`);
      const m = mm(p);
      expect(p.steps.map((s) => s.spec.kind), w).toEqual(["matmul"]);
      expect(m.spec, w).toMatchObject({ transB: true, bRound: "f16", aRound: "f16" });
      expect(m.buffers.slice(0, 2), w).toEqual([0, 1]);
    }
  });

  it("a cast with another use keeps its kernel (and the matmul reads its result)", () => {
    const p = stepsOf(`fn f(x: f32[M, K], w: f32[K, N]) -> (f32[M, N], f16[M, K]) { let h = cast(x, f16)
      return h @ cast(w, f16), h }`);
    const m = mm(p);
    const k = m.spec as MatmulKernel;
    expect(k.aRound).toBeUndefined();
    expect(k.bRound).toBe("f16");
    expect(p.steps.filter((s) => s.ops.includes("cast")).length).toBe(1);
  });
});

describe("operand casts on wasm against the reference", () => {
  it("f16/bf16-rounded operands with a fused bias + relu epilogue, plain and transposed, odd sizes", async () => {
    const ir = irOf(`
      fn h(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f32[M, N] { return relu(cast(x, f16) @ cast(w, f16) + b) }
      fn hb(x: f32[M, K], w: f32[N, K], b: f32[N]) -> f32[M, N] { return cast(x, bf16) @ cast(transpose(w), bf16) + b }`);
    for (const [M, K, N] of [[1, 3, 1], [17, 255, 33], [257, 17, 3]] as const) {
      // Both sides round the operands the same way (round to nearest even); what differs is the order and
      // precision of the sums: f32 against float64, K terms, rtol K * 2^-24 with a factor 8.
      const tol = Math.max(1e-5, K * 2 ** -24 * 8);
      for (const [fn, w] of [["h", rand([K, N], 2)], ["hb", rand([N, K], 3)]] as const) {
        const { wasm, ref } = await runBoth(ir, fn, { x: rand([M, K], 1), w, b: rand([N], 4) });
        expectClose(wasm[0]!, ref[0]!, `${fn} [${M}, ${K}, ${N}]`, tol, tol);
      }
    }
  });
});

describe("a mixed-precision MLP: f16 activations between the layers", () => {
  const SRC = `fn two(x: f32[M, K], w1: f32[K, H], b: f32[H], w2: f32[H, N]) -> f32[M, N] {
    return cast(relu(cast(x, f16) @ cast(w1, f16) + b), f16) @ cast(w2, f16) }`;

  it("the layer-1 epilogue stores f16, layer 2 reads it as its f16 operand: two kernels", () => {
    const p = stepsOf(SRC, "two");
    expect(p.steps.map((s) => s.spec.kind)).toEqual(["matmul", "matmul"]);
    const [k1, k2] = p.steps.map((s) => s.spec as MatmulKernel);
    expect(k1).toMatchObject({ aRound: "f16", bRound: "f16", epilogue: { out: "f16" } });
    expect(k2).toMatchObject({ aDtype: "f16", bRound: "f16" });
    expect(k2!.aRound).toBeUndefined();
    // Layer 2 reads what layer 1 writes (a cast that is a fused group's root is never folded away).
    expect(p.steps[1]!.buffers[0]).toBe(p.steps[0]!.buffers.at(-1));
  });

  it("matches the reference within the bound from one f16 rounding of h", async () => {
    const ir = irOf(SRC);
    const r16 = (v: number) => f16BitsToF32(f32ToF16Bits(v));
    const u = 2 ** -11;
    for (const [M, K, H, N] of [[3, 17, 33, 5], [17, 300, 20, 9]] as const) {
      const x = rand([M, K], 1), w1 = rand([K, H], 2), b = rand([H], 3), w2 = rand([H, N], 4);
      const { wasm, ref } = await runBoth(ir, "two", { x, w1, b, w2 });
      // h = relu(x16 @ w16 + b) in float64; wasm and the reference may round an element of h to neighbouring
      // f16 values (one ulp, 2u relative), so output (i, j) may differ by 2u * sum_k |h_ik| |w2_kj| (plus the f32
      // sums' K * 2^-24 per term, factor 8).
      const bound = Array.from({ length: M * N }, (_, ij) => {
        const [i, j] = [Math.floor(ij / N), ij % N];
        let s = 0;
        for (let k = 0; k < H; k++) {
          let h = b.data[k]!;
          for (let q = 0; q < K; q++) h += r16(x.data[i * K + q]!) * r16(w1.data[q * H + k]!);
          s += Math.abs(Math.max(h, 0)) * Math.abs(r16(w2.data[k * N + j]!));
        }
        return (2 * u + (K + H) * 2 ** -24 * 8) * s;
      });
      const got = wasm[0]!.toFlatArray();
      got.forEach((g, ij) => expect(Math.abs(g - ref[0]!.data[ij]!), `two [${M}, ${K}, ${H}, ${N}] @${ij}`).toBeLessThanOrEqual(bound[ij]! + 1e-30));
    }
  });
});

describe("a 16-bit matmul result summed over a batch (mixed precision's conv weight gradient)", () => {
  it("the matmul stores f16 and the reduction widens it in its prologue; results match the reference", async () => {
    for (const t of ["f16", "bf16"] as const) {
      const src = `fn f(a: f32[B, 9, 20], b: f32[B, 20, 16]) -> f32[1, 9, 16] { return sum(cast(cast(a @ b, ${t}), f32), axis: 0, keepdims: true) }`;
      const p = stepsOf(src);
      expect(p.steps.map((s) => s.spec.kind), t).toEqual(["matmul", "reduce"]);
      expect((mm(p).spec as MatmulKernel).epilogue?.out, t).toBe(t);
      const red = p.steps[1]!.spec;
      expect(red.kind === "reduce" && red.prologue?.inputs.map((i) => i.dtype), t).toEqual([t]);
      const a = rand([5, 9, 20], 3), b = rand([5, 20, 16], 4);
      const { wasm, ref } = await runBoth(irOf(src), "f", { a, b });
      // Each batch's product is rounded to the format once, then the five are summed. The f32 sum of a product may
      // differ from the float64 one in its last bits and so round to the neighbouring 16-bit value: one unit in
      // the last place (u = 2^-11 for f16, 2^-8 for bf16, relative) per batch term, bounded by the largest term.
      const u = t === "f16" ? 2 ** -11 : 2 ** -8;
      for (let o = 0; o < 9 * 16; o++) {
        const [i, j] = [Math.floor(o / 16), o % 16];
        let big = 0;
        for (let q = 0; q < 5; q++) {
          let s = 0;
          for (let k = 0; k < 20; k++) s += a.data[(q * 9 + i) * 20 + k]! * b.data[(q * 20 + k) * 16 + j]!;
          big = Math.max(big, Math.abs(s));
        }
        expect(Math.abs(wasm[0]!.data[o]! - ref[0]!.data[o]!), `${t} [${i}, ${j}]`).toBeLessThanOrEqual(5 * 2 * u * big + 1e-6);
      }
    }
  });
});
