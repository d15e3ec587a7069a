// Data-parallel faults: a replica that throws stops the step on every replica before any update (an error naming
// the replica and the cause, running statistics restored), a replica that dies rejects the step instead of hanging,
// bad replica counts are clear errors, and without shared memory training says so and runs on one replica.
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { allParams, batches, build, cnn, mlp, reference, sameBits, trainer, worstRatio, WORKER_URL } from "./helpers.js";
import { KilnError } from "../../runtime/errors.js";
import { Tensor } from "../../runtime/tensor.js";
import { spawnWorkerTransport } from "../../runtime/parallel/transport.js";
import type { ReplicaTransport } from "../../runtime/parallel/protocol.js";

beforeAll(ensureRuntimeBuilt, 300_000);
afterEach(() => vi.unstubAllGlobals());

async function rejection(p: Promise<unknown>): Promise<KilnError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(KilnError);
  return e as KilnError;
}

describe("a replica that fails", () => {
  it("stops the whole step, names the replica and the cause, and changes nothing anywhere", async () => {
    const b = await build(cnn("adam(lr: 0.003)", true));
    const data = batches([1, 8, 8], 3, 12, 4);
    const bad = { x: new Tensor("f32", [12, 1, 8, 8], (data[1]!.x.data as Float32Array).slice()), y: data[1]!.y };
    (bad.x.data as Float32Array)[8 * 64 + 5] = NaN; // sample 8: replica 2's share of 12 over 3 replicas
    const t = await trainer(b, 3);
    const clean = await trainer(b, 3);
    try {
      await t.step(data[0]!);
      await clean.step(data[0]!);
      const before = await Promise.all([0, 1, 2].map((r) => t.replicaParams(r)));
      const e = await rejection(t.step(bad, { checkNumerics: true }));
      expect(e.replica).toBe(2);
      expect(e.code).toBe("non_finite");
      expect(e.message).toMatch(/^data-parallel step: replica 2 of 3 failed; no replica updated its params: /);
      // Replicas 0 and 1 ran their grad (and their batch_norm running statistics) before replica 2 failed.
      for (const r of [0, 1, 2]) expect(sameBits(await t.replicaParams(r), before[r]!), `replica ${r}`).toBeUndefined();
      // The run goes on as if the bad batch had never been offered.
      for (const d of data.slice(2)) {
        await t.step(d);
        await clean.step(d);
      }
      for (const r of [0, 1, 2]) expect(sameBits(await t.replicaParams(r), await clean.replicaParams(r)), `replica ${r}`).toBeUndefined();
    } finally {
      t.dispose();
      clean.dispose();
    }
  }, 120000);

  it("that dies rejects the step instead of hanging, and the trainer then refuses to go on", async () => {
    const b = await build(mlp("sgd(lr: 0.1)"));
    const data = batches([12], 5, 8, 2);
    let kill: (() => void) | undefined;
    const spawn = async (): Promise<ReplicaTransport> => {
      const real = await spawnWorkerTransport(WORKER_URL);
      let onFailure: (why: string) => void = () => {};
      kill = () => {
        real.close();
        onFailure("its worker exited (code 1)");
      };
      return { post: (m) => real.post(m), listen: (msg, fail) => { onFailure = fail; real.listen(msg, fail); }, close: () => real.close() };
    };
    const t = await trainer(b, 2, { spawn });
    try {
      await t.step(data[0]!);
      const before = allParams(t.module);
      kill!();
      const e = await rejection(t.step(data[1]!));
      expect(e.replica).toBe(1);
      expect(e.message).toMatch(/replica 1 of 2 failed.*the replica died: its worker exited/);
      expect(sameBits(allParams(t.module), before)).toBeUndefined();
      expect((await rejection(t.step(data[1]!))).message).toMatch(/the trainer is unusable: replica 1 died/);
    } finally {
      t.dispose();
    }
  }, 60000);
});

describe("mixed precision", () => {
  it("an overflow on one replica makes every replica skip the step and back off the loss scale", async () => {
    const b = await build(mlp("adam(lr: 0.003)"), "mixed-f16");
    const [good, next] = batches([12], 5, 8, 2);
    const hot = new Tensor("f32", [8, 12], (good!.x.data as Float32Array).slice());
    (hot.data as Float32Array).fill(6e4, 4 * 12); // replica 1's half: f16 activations and gradients overflow
    const t = await trainer(b, 2);
    try {
      // Replica 0's own gradients are finite: it skips because replica 1's Inf reached the reduced vector.
      const half = { x: new Tensor("f32", [4, 12], (hot.data as Float32Array).slice(0, 48)), y: new Tensor("i32", [4], (good!.y.data as Int32Array).slice(0, 4)), share: 0.5 };
      const own = (t.module.call("T.grad", half) as Tensor[])[1]!.data as Float32Array;
      expect(own.every(Number.isFinite)).toBe(true);
      const before = allParams(t.module);
      expect((await t.step({ x: hot, y: good!.y })).applied).toBe(false);
      for (const r of [0, 1]) {
        const p = await t.replicaParams(r);
        expect(p["T.scaler.scale"]!.data[0], `replica ${r}`).toBe(32768);
        for (const name of Object.keys(before).filter((n) => !n.startsWith("T.scaler."))) expect(sameBits({ [name]: p[name]! }, { [name]: before[name]! }), `replica ${r}`).toBeUndefined();
      }
      expect((await t.step(next!)).applied).toBe(true);
    } finally {
      t.dispose();
    }
  }, 60000);
});

describe("replica counts and batches", () => {
  it("rejects a replica count that is zero, negative or not an integer", async () => {
    const b = await build(mlp("sgd(lr: 0.1)"));
    for (const n of [0, -1, 1.5, "2", NaN]) {
      const e = await rejection(trainer(b, n as number));
      expect(e.code).toBe("bad_option");
      expect(e.message).toMatch(/^replicas must be an integer >= 1, got /);
    }
  });

  it("rejects a global batch smaller than the replica count, and inputs that are not Tensors", async () => {
    const b = await build(mlp("sgd(lr: 0.1)"));
    const t = await trainer(b, 3);
    try {
      const [d] = batches([12], 5, 2, 1);
      const e = await rejection(t.step(d!));
      expect(e.message).toBe("data-parallel step: the global batch of 2 is smaller than the 3 replicas (each replica needs at least one sample)");
      const f = await rejection(t.step({ x: new Float32Array(24) as unknown as Tensor, y: d!.y }));
      expect(f.message).toMatch(/input "x" must be a Tensor/);
      await t.step(batches([12], 5, 3, 1)[0]!); // still usable
    } finally {
      t.dispose();
    }
  }, 60000);

  it("needs a module compiled with dataParallel", async () => {
    const { compileToIR, buildWasm } = await import("../../compiler/compile.js");
    const plain = await buildWasm(compileToIR(mlp("sgd(lr: 0.1)"), "p.kiln").ir!, "p");
    const e = await rejection(trainer(plain, 2));
    expect(e.message).toMatch(/no train block compiled in data-parallel form: compile with \{ dataParallel: true \}/);
  });
});

describe("without shared memory", () => {
  it("says so and trains on one replica", async () => {
    const b = await build(mlp("sgd(lr: 0.05, momentum: 0.9)"));
    const data = batches([12], 5, 8, 5);
    vi.stubGlobal("SharedArrayBuffer", undefined);
    const t = await trainer(b, 2);
    vi.unstubAllGlobals();
    try {
      expect(t.replicas).toBe(1);
      expect(t.fallback).toMatch(/^2 replicas need shared memory .* training on one replica$/);
      for (const d of data) await t.step(d);
      const { ratio, where } = worstRatio(allParams(t.module), allParams(await reference(b, data)), 1e-6, 1e-6);
      expect(ratio, where).toBeLessThanOrEqual(1);
    } finally {
      t.dispose();
    }
  }, 60000);
});
