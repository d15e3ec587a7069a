// `kiln train --replicas N`: the loss per step matches one replica's, a checkpoint written by 2 replicas resumes
// on 3, and bad replica counts are usage errors or clear errors (run in-process through main()).
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../compiler/cli/main.js";
import { pickParallelism } from "../../compiler/cli/train.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

beforeAll(ensureRuntimeBuilt, 300_000);

async function kiln(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const losses = (out: string) => [...out.matchAll(/step +\d+\/\d+ {2}loss (\d+\.\d+)/g)].map((m) => Number(m[1]));

describe("kiln train --replicas", () => {
  it("trains like one replica, and resumes a 2-replica checkpoint on 3 replicas", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-dp-"));
    const one = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "6", "--batch", "6", "--replicas", "1");
    expect(one.code, one.err).toBe(0);
    const two = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "3", "--batch", "6", "--replicas", "2", "--checkpoint", join(dir, "c.safetensors"));
    expect(two.code, two.err).toBe(0);
    expect(two.out).toContain("kiln: 2 data-parallel replicas, each on 3 samples of every batch of 6");
    const three = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "3", "--batch", "6", "--replicas", "3", "--resume", join(dir, "c.safetensors"));
    expect(three.code, three.err).toBe(0);
    // The loss is printed with 6 decimals: equal to one replica's up to f32 rounding of the split sums.
    const want = losses(one.out), got = [...losses(two.out), ...losses(three.out)];
    expect(got.length).toBe(6);
    got.forEach((l, i) => expect(Math.abs(l - want[i]!), `step ${i + 1}`).toBeLessThanOrEqual(2e-6));
  }, 120000);

  it("rejects a replica count that is not a positive integer, or larger than the batch", async () => {
    for (const bad of ["0", "-2", "1.5", "two"]) {
      // --replicas=VALUE: the form for a value that starts with "-" (parseArgs reads "--replicas -2" as a missing value).
      const r = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "1", `--replicas=${bad}`);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--replicas must be an integer >= 1, got '${bad}'`);
    }
    const big = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "1", "--batch", "2", "--replicas", "3");
    expect(big.code).toBe(1);
    expect(big.err).toContain("--replicas 3 is larger than the batch of 2");
  }, 60000);

  it("uses a second core by default: replicas for conv nets, intra-op threads for dense ones", async () => {
    expect(pickParallelism(256, 2, true)).toEqual({ replicas: 2, threads: 1 });
    expect(pickParallelism(256, 2, false)).toEqual({ replicas: 1, threads: 2 });
    expect(pickParallelism(256, 1, true)).toEqual({ replicas: 1, threads: 1 });
    const cnn = await kiln("train", "dsl-examples/mnist_cnn.kiln", "--steps", "1", "--batch", "64");
    const mlp = await kiln("train", "dsl-examples/mlp_train.kiln", "--steps", "1", "--batch", "64");
    const { availableParallelism } = await import("node:os");
    if (availableParallelism() >= 2) {
      expect(cnn.out).toContain("kiln: 2 data-parallel replicas, each on 32 samples of every batch of 64");
      expect(mlp.out).toContain("kiln: 2 threads per step (intra-op");
    } else expect(cnn.out + mlp.out).not.toMatch(/replicas|threads per step/);
  }, 120000);
});
