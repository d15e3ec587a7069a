// Text data for language models: the character and byte vocabularies, the split by position, the (x, y)
// windows shifted by one, sampling from logits; and `kiln train --data FILE.txt` end to end on a small model
// (a bigram table through embedding, a model with a submodule array) over a text with an obvious pattern.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TextDataset, Vocabulary } from "../../runtime/data/text.js";
import { generate, sampleLogits } from "../../runtime/train/sample.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { irOf } from "../helpers/backend.js";
import { runTraining } from "../../compiler/cli/train.js";

describe("vocabularies", () => {
  it("char: the distinct characters sorted by code point; encode and decode invert each other", () => {
    const v = Vocabulary.ofText("hello, world\n");
    expect(v.chars.join("")).toBe("\n ,dehlorw");
    expect([...v.encode("low")]).toEqual([6, 7, 9]);
    expect(v.decode(v.encode("hello, world\n"))).toBe("hello, world\n");
    expect(() => v.encode("x")).toThrow(/"x" is not in the vocabulary of 10/);
    expect(() => v.decode([10])).toThrow(/id 10 is out of range/);
  });
  it("byte: UTF-8 bytes, 256 ids", () => {
    const v = new Vocabulary("byte");
    expect(v.size).toBe(256);
    expect([...v.encode("é!")]).toEqual([0xc3, 0xa9, 0x21]);
    expect(v.decode([0xc3, 0xa9, 0x21])).toBe("é!");
  });
});

describe("splits and windows", () => {
  const text = "abcdefghijklmnopqrst"; // 20 characters: the first 18 train, the last 2 are held out
  const d = TextDataset.fromText(text);
  it("splits by position, 90% / 10%", () => {
    expect(d.vocab.decode(d.train.ids)).toBe("abcdefghijklmnopqr");
    expect(d.vocab.decode(d.heldOut.ids)).toBe("st");
  });
  it("y is x shifted by one position", () => {
    const { x, y } = d.train.windows([0, 5], 4);
    expect(x.shape).toEqual([2, 4]);
    expect(d.vocab.decode(x.data as Int32Array)).toBe("abcdfghi");
    expect(d.vocab.decode(y.data as Int32Array)).toBe("bcdeghij");
    expect(() => d.train.windows([14], 4)).toThrow(/window start 14 with T=4 is out of range for the train split of 18 ids/);
    expect(() => d.heldOut.randomBatch(new Rng(1), 1, 4)).toThrow(/fewer than a window of T \+ 1 = 5/);
  });
  it("random windows lie inside their split and repeat with the seed", () => {
    const a = d.train.randomBatch(new Rng(3), 64, 5), b = d.train.randomBatch(new Rng(3), 64, 5);
    expect([...a.x.data]).toEqual([...b.x.data]);
    const s = d.vocab.decode(a.x.data as Int32Array);
    for (let k = 0; k < 64; k++) expect(text.slice(0, 18)).toContain(s.slice(5 * k, 5 * k + 5));
    // Every start 0..12 is reachable: 64 draws from 13 starts cover most of them.
    expect(new Set(Array.from({ length: 64 }, (_, k) => s[5 * k])).size).toBeGreaterThan(8);
  });
});

describe("sampling", () => {
  it("temperature 0 is argmax; a peaked softmax almost always picks its peak", () => {
    const rng = new Rng(0);
    expect(sampleLogits([0, 3, 1], 0, rng)).toBe(1);
    const picks = Array.from({ length: 200 }, () => sampleLogits([0, 10, 0], 1, rng));
    expect(picks.filter((p) => p === 1).length).toBeGreaterThan(195);
  });
  it("generate slides a window of the context length and appends the drawn ids", () => {
    // A fake model that always predicts (last id + 1) mod 5 with certainty, and records the windows it saw.
    const seen: number[][] = [];
    const mod = {
      call(_fn: string, inputs: Record<string, Tensor>) {
        const w = [...(inputs.x!.data as Int32Array)];
        seen.push(w);
        const logits = new Float32Array(3 * 5).fill(-100);
        logits[10 + ((w[2]! + 1) % 5)] = 100;
        return new Tensor("f32", [1, 3, 5], logits);
      },
    };
    const out = generate(mod, [0, 1, 2], { fn: "M.forward", input: "x", context: 3, count: 4, temperature: 1 });
    expect([...out]).toEqual([0, 1, 2, 3, 4, 0, 1]);
    expect(seen).toEqual([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0]]);
  });
});

describe("kiln train --data FILE.txt", () => {
  it("a small model with a submodule array learns a patterned text: held-out loss far below uniform", async () => {
    // "abcd" repeated with a random fifth letter: after a,b,c the next letter is certain; d is followed by one of
    // four letters (about ln 4 nats). Uniform guessing over the 8 characters is ln 8 = 2.08 nats.
    const rng = new Rng(11);
    let text = "";
    for (let i = 0; i < 3000; i++) text += "abcd" + "efgh"[Math.floor(rng.uniform() * 4)];
    const dir = mkdtempSync(join(tmpdir(), "kiln-text-"));
    writeFileSync(join(dir, "t.txt"), text);
    const src = `
model Mix {
  param w: f32[16, 16] = normal(std: 0.1)
  fn forward(h: f32[B, 8, 16]) -> f32[B, 8, 16] { return h + tanh(h @ w) }
}
model LM {
  param tok: f32[8, 16] = normal(std: 0.5)
  param head: f32[16, 8] = normal(std: 0.1)
  layers: Mix[2]
  fn forward(x: i32[B, 8]) -> f32[B, 8, 8] {
    let h = embedding(x, tok)
    for i in 0..2 { h = layers[i].forward(h) }
    return h @ head
  }
  fn loss(x: i32[B, 8], y: i32[B, 8]) -> f32 { return cross_entropy(reshape(forward(x), [B * 8, 8]), reshape(y, [B * 8])) }
}
train T { model: LM, loss: loss, optimizer: adam(lr: 0.05) }`;
    const lines: string[] = [];
    const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
    const r = await runTraining(irOf(src, "lm.kiln"), { data: "text", textFile: join(dir, "t.txt"), steps: 60, batch: 16, seed: 1, classes: 8, checkNumerics: false, sampleChars: 40, progress: sink }, (s) => lines.push(s));
    expect(r.heldOut!.length).toBe(10);
    expect(r.heldOut!.at(-1)!).toBeLessThan(0.6);
    expect(r.heldOut![0]!).toBeGreaterThan(r.heldOut!.at(-1)!);
    expect(lines.some((l) => /^kiln: held-out loss \d\.\d{4} nats\/char on 128 windows of 8/.test(l))).toBe(true);
    // The sample follows the pattern the model learned: every 'a' is followed by "bcd".
    expect(r.sample!.length).toBe(40);
    for (const m of r.sample!.matchAll(/a(?=.{3})/g)) expect(r.sample!.slice(m.index! + 1, m.index! + 4)).toBe("bcd");
  });
});
