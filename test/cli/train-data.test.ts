// kiln train --data FILE: a CSV with a label column, NPY and IDX features with a --labels file, shaped to the train
// block's input, a held-out share measured after each epoch; and the errors a user's own files run into.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../compiler/cli/main.js";
import { idxBytes, npyBytes, bytesOf } from "../data/helpers.js";

async function kiln(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  const code = await main(args, (s) => out.push(s), (s) => err.push(s), quiet);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const tmp = () => mkdtempSync(join(tmpdir(), "kiln-data-"));

// Two features, two classes split by the sign of x0 + x1: linearly separable, so a few epochs learn it.
const LINEAR = `model Lin {
  param w: f32[2, 2] = xavier()
  param b: f32[2] = zeros()
  fn forward(x: f32[B, 2]) -> f32[B, 2] {
    return x @ w + b
  }
  fn loss(x: f32[B, 2], y: i32[B]) -> f32 {
    return cross_entropy(forward(x), y)
  }
}
train Fit { model: Lin, loss: loss, optimizer: adam(lr: 0.05) }
`;

function points(n: number): { x: number[]; y: number[] } {
  const x: number[] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.sin(i * 12.9898) * 2, b = Math.cos(i * 78.233) * 2;
    x.push(a, b);
    y.push(a + b > 0 ? 1 : 0);
  }
  return { x, y };
}

function setup(): { dir: string; model: string } {
  const dir = tmp();
  const model = join(dir, "lin.kiln");
  writeFileSync(model, LINEAR);
  return { dir, model };
}

describe("kiln train --data FILE", () => {
  it("a CSV: the label column by name, 20% held out, the accuracy measured on it", async () => {
    const { dir, model } = setup();
    const { x, y } = points(200);
    const csv = join(dir, "pts.csv");
    writeFileSync(csv, "cls,a,b\n" + y.map((c, i) => `${c},${x[2 * i]},${x[2 * i + 1]}`).join("\n") + "\n");
    const r = await kiln("train", model, "--data", csv, "--label-column", "cls", "--epochs", "6", "--batch", "16");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`on ${csv}: 200 rows of 2 features as x, labels from column "cls" as y; 160 training rows, 40 held out (20%, seed 0)`);
    const acc = [...r.out.matchAll(/train loss \S+ {2}held-out accuracy (\d+\.\d+)%/g)].map((m) => Number(m[1]));
    expect(acc.length).toBe(6);
    expect(acc.at(-1)).toBeGreaterThan(85);
    expect(r.out).toMatch(/final held-out accuracy \d+\.\d+% on 40 rows/);
    // By index, and without a name: the last column is the default (and is said).
    writeFileSync(join(dir, "last.csv"), y.map((c, i) => `${x[2 * i]},${x[2 * i + 1]},${c}`).join("\n") + "\n");
    const last = await kiln("train", model, "--data", join(dir, "last.csv"), "--epochs", "1", "--batch", "16", "--val-split", "0.5");
    expect(last.code, last.err).toBe(0);
    expect(last.out).toContain("labels from column 2 as y");
    expect(last.out).toContain("100 training rows, 100 held out (50%");
  }, 120_000);

  it("NPY features with NPY labels, IDX features with IDX labels", async () => {
    const { dir, model } = setup();
    const { x, y } = points(120);
    writeFileSync(join(dir, "x.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (120, 2), }", bytesOf(Float32Array.from(x))));
    writeFileSync(join(dir, "y.npy"), npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (120,), }", bytesOf(BigInt64Array.from(y.map(BigInt)))));
    const npy = await kiln("train", model, "--data", join(dir, "x.npy"), "--labels", join(dir, "y.npy"), "--epochs", "4", "--batch", "8");
    expect(npy.code, npy.err).toBe(0);
    expect(npy.out).toContain(`120 samples of [2] f32 as x, labels from ${join(dir, "y.npy")} as y;`);
    expect(Number(/final held-out accuracy (\d+\.\d+)%/.exec(npy.out)![1])).toBeGreaterThan(80);
    writeFileSync(join(dir, "x.idx"), idxBytes(0x0d, [120, 2], x));
    writeFileSync(join(dir, "y.idx"), idxBytes(0x08, [120], y));
    const idx = await kiln("train", model, "--data", join(dir, "x.idx"), "--labels", join(dir, "y.idx"), "--epochs", "1", "--batch", "8");
    expect(idx.code, idx.err).toBe(0);
    expect(idx.out).toContain("96 training rows, 24 held out");
  }, 120_000);

  it("errors: missing labels, a shape the model does not take, a label beyond its classes, a bad column", async () => {
    const { dir, model } = setup();
    writeFileSync(join(dir, "x3.npy"), npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }", bytesOf(new Float32Array(30))));
    const nolabels = await kiln("train", model, "--data", join(dir, "x3.npy"));
    expect(nolabels.code).toBe(2);
    expect(nolabels.err).toContain("holds features only: name the labels with --labels FILE");
    writeFileSync(join(dir, "y.npy"), npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (10,), }", bytesOf(new Int32Array(10))));
    const shape = await kiln("train", model, "--data", join(dir, "x3.npy"), "--labels", join(dir, "y.npy"), "--batch", "4");
    expect(shape).toMatchObject({ code: 1, err: expect.stringContaining("each sample has 3 values ([3]) but the train block's input takes [2] (2 values)") });
    writeFileSync(join(dir, "big.csv"), "a,b,label\n1,2,0\n3,4,7\n5,6,1\n7,8,0\n");
    const cls = await kiln("train", model, "--data", join(dir, "big.csv"), "--batch", "2");
    expect(cls).toMatchObject({ code: 1, err: expect.stringContaining("label 7 (row 2) is outside [0, 2): the model has 2 classes") });
    const col = await kiln("train", model, "--data", join(dir, "big.csv"), "--label-column", "kind");
    expect(col).toMatchObject({ code: 2, err: expect.stringContaining(`--label-column kind: ${join(dir, "big.csv")} has no such column (it has columns "a", "b", "label")`) });
    writeFileSync(join(dir, "small.csv"), "a,b,label\n1,2,0\n3,4,1\n5,6,1\n7,8,0\n");
    const batch = await kiln("train", model, "--data", join(dir, "small.csv"), "--batch", "64");
    expect(batch.err).toContain("--batch 64 is more than the 3 training rows");
    writeFileSync(join(dir, "text.csv"), "a,b,label\n1,x,0\n");
    const text = await kiln("train", model, "--data", join(dir, "text.csv"));
    expect(text.code).toBe(1);
    expect(text.err).toMatch(/^kiln: CSV file .*text\.csv: row 1 \(line 2\), column 2 "b": "x" is not a number$/);
  }, 120_000);
});
