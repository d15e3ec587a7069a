// Gradient buckets all-reduced while backward runs (compiler/codegen/plan-buckets.ts, runtime/parallel/collective.ts):
// the grad plan announces each bucket right after the last kernel writing its gradients, and training with the
// overlap is bit-identical to the separate reduce round (the same sums in the same order) and to one replica x N*b
// within f32 tolerance.
import { beforeAll, describe, expect, it } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { allParams, batches, build, cnn, reference, sameBits, trainer, worstRatio } from "./helpers.js";
import { HOST_BUCKET, type FunctionManifest } from "../../runtime/manifest.js";

/** An MLP whose w1 (300 x 256 = 76800 elements) is a bucket alone (BUCKET_ELEMENTS = 65536): two buckets. */
const wide = `
model W {
  param w1: f32[300, 256] = he()
  param b1: f32[256] = zeros()
  param w2: f32[256, 10] = xavier()
  param b2: f32[10] = zeros()
  fn loss(x: f32[B, 300], y: i32[B]) -> f32 { return cross_entropy(relu(x @ w1 + b1) @ w2 + b2, y) }
}
train T { model: W, loss: loss, optimizer: adam(lr: 0.001) }`;

beforeAll(ensureRuntimeBuilt, 300_000);

const outs = (st: FunctionManifest["steps"][number]) => st.buffers.slice(st.buffers.length - (st.outputs ?? 1));

describe("gradient buckets overlapped with backward", () => {
  it("the grad plan announces each bucket right after its gradients are final, before backward ends", async () => {
    const b = await build(wide);
    const grad = b.manifest.functions.find((f) => f.name === "T.grad")!;
    const layout = grad.parallel!;
    expect(layout.buckets.map((k) => k.numel)).toEqual([10 + 2560 + 256, 76800]);
    const vec = grad.outputValues[grad.outputs.findIndex((o) => o.name === "grads")]!;
    const hosts = grad.steps.flatMap((st, i) => (st.kernel === HOST_BUCKET ? [i] : []));
    expect(hosts.length).toBe(2);
    // Step index of bucket k's announcement (ints [k], a constant polynomial; [[0]] or [] for 0).
    const at = [0, 1].map((k) => hosts.find((i) => Number(grad.steps[i]!.ints[0]![0]?.[0] ?? 0) === k)!);
    at.forEach((i, k) => {
      expect(i, `bucket ${k}`).toBeDefined();
      const { offset, numel } = layout.buckets[k]!;
      // Every copy into the bucket's range ran before its announcement (the copies' output offset is their 2nd int).
      const into = grad.steps.flatMap((st, j) => (st.ops.includes("concat") && outs(st).includes(vec) ? [[j, Number(st.ints[1]?.[0]?.[0] ?? 0)] as const] : []));
      for (const [j, off] of into) if (off >= offset && off < offset + numel) expect(j, `copy at ${off}`).toBeLessThan(i);
    });
    // The first bucket announced is posted while kernels still run: its reduction overlaps them.
    expect(grad.steps.slice(Math.min(...at) + 1).some((st) => !st.kernel.startsWith("@") && !st.ops.includes("concat"))).toBe(true);
  }, 60000);

  for (const [name, src, shape, classes, precision] of [
    ["wide MLP (2 buckets), f32", wide, [300], 10, "f32"],
    ["CNN with batch_norm, mixed-f16", cnn("adam(lr: 0.003)", true), [1, 8, 8], 3, "mixed-f16"],
  ] as const) {
    it(`${name}: bit-identical to the separate reduce round, and close to one replica x N*b`, async () => {
      const b = await build(src, precision);
      const data = batches([...shape], classes, 12, 10);
      const run = async (n: number, overlap: boolean) => {
        const t = await trainer(b, n, { overlap, scatterFrom: 0 });
        try {
          for (const d of data) await t.step({ x: d.x, y: d.y });
          // batch_norm's running statistics are each replica's own (per-replica statistics, as DDP): not compared.
          const own = (p: Record<string, unknown>) => Object.fromEntries(Object.entries(p).filter(([k]) => !/\.r[mv]$/.test(k)));
          for (let r = 1; r < n; r++) expect(sameBits(own(await t.replicaParams(r)) as never, own(allParams(t.module)) as never), `replica ${r}`).toBeUndefined();
          return allParams(t.module);
        } finally {
          t.dispose();
        }
      };
      for (const n of [2, 3]) {
        const overlapped = await run(n, true);
        expect(sameBits(overlapped, await run(n, false)), `${n} replicas`).toBeUndefined();
        if (precision === "f32") {
          const { ratio, where } = worstRatio(overlapped, allParams(await reference(b, data)), 1e-5, 1e-5);
          expect(ratio, where).toBeLessThanOrEqual(1);
        }
      }
    }, 120000);
  }
});
