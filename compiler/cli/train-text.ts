// CLI helper for `kiln train --data FILE.txt`: a character (or byte) language model on a text file. The step
// takes (x, y: i32[B, T]) windows of the first 90% of the text; every tenth of the run the model's loss method
// (eval mode) is measured on fixed windows of the held-out last 10%; at the end the held-out loss in nats per
// character, and text sampled by the model's forward from a held-out prompt.

import type { Graph, IRModule } from "../ir/graph.js";
import { ioType } from "../ir/graph.js";
import type { KilnModule } from "../../runtime/wasm/module.js";
import type { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { Rng } from "../../runtime/rng.js";
import { loadText, type TextDataset, type TextSplit } from "../../runtime/data/text.js";
import { ProgressBar } from "../../runtime/train/progress.js";
import { generate } from "../../runtime/train/sample.js";

export interface TextTrainOptions {
  file: string;
  steps: number;
  batch: number;
  seed: number;
  /** Characters to generate at the end (0: none). */
  sampleChars: number;
  vocab?: "char" | "byte";
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface TextTrainResult {
  /** Mean training loss over each evaluation interval. */
  losses: number[];
  /** Held-out loss at the end of each interval. */
  heldOut: number[];
  /** Steps per evaluation interval. */
  every: number;
  sample?: string;
}

/** The step's (x, y) inputs: two i32 [B, T] with a known T. */
function windowInputs(g: Graph): { x: string; y: string; T: number } {
  const io = g.inputs.map((i) => ({ name: i.name, t: ioType(g, i) }));
  const T = io[0]?.t.shape[1];
  const ok = io.length === 2 && io.every((i) => i.t.dtype === "i32" && i.t.shape.length === 2 && i.t.shape[1] === T) && typeof T === "number";
  if (!ok) throw new KilnError(`kiln: ${g.name} takes (${io.map((i) => `${i.name}: ${i.t.dtype}[${i.t.shape.join(", ")}]`).join(", ")}); text training needs (x: i32[B, T], y: i32[B, T]) with a number for T`);
  return { x: io[0]!.name, y: io[1]!.name, T: T as number };
}

/** The model's own function with the step's inputs and a scalar result: the loss, evaluated in eval mode. */
function lossFn(ir: IRModule, model: string, g: Graph): Graph {
  const names = g.inputs.map((i) => i.name).join(",");
  const f = ir.functions.find((h) => h.name.startsWith(`${model}.`) && h.inputs.map((i) => i.name).join(",") === names && h.outputs.length === 1 && h.nodes[h.outputs[0]!.node]!.type.shape.length === 0);
  if (!f) throw new KilnError(`kiln: ${model} has no method (${names}) -> scalar to measure the held-out loss with`);
  return f;
}

function meanLoss(mod: KilnModule, fn: string, split: TextSplit, starts: number[][], T: number, io: { x: string; y: string }): number {
  let sum = 0;
  for (const s of starts) {
    const { x, y } = split.windows(s, T);
    sum += Number((mod.call(fn, { [io.x]: x, [io.y]: y }) as Tensor).data[0]);
  }
  return sum / starts.length;
}

export async function trainText(ir: IRModule, g: Graph, mod: KilnModule, model: string, o: TextTrainOptions, out: (s: string) => void, step: (inputs: Record<string, Tensor>, n: number) => Promise<number>): Promise<TextTrainResult> {
  const io = windowInputs(g);
  const data: TextDataset = await loadText(o.file, { vocab: o.vocab });
  const evalFn = lossFn(ir, model, g);
  const forward = ir.functions.find((f) => f.name === `${model}.forward` && f.inputs.length === 1);
  const V = forward ? (ioShape(forward).at(-1) as number) : undefined;
  if (V !== undefined && data.vocab.size > V) {
    throw new KilnError(`kiln: ${o.file} has ${data.vocab.size} distinct characters but ${model}.forward predicts ${V} classes`, { code: "input_shape", tensor: "vocabulary", expected: `<= ${V}`, actual: String(data.vocab.size) });
  }
  out(`kiln: training ${g.name.replace(/\.step$/, "")} on ${o.file}: ${data.train.ids.length} ${data.vocab.kind}s to train (first 90%), ${data.heldOut.ids.length} held out (last 10%), vocabulary ${data.vocab.size}, windows of ${io.T}, batch ${o.batch}, ${o.steps} steps (uniform guessing: ${Math.log(data.vocab.size).toFixed(2)} nats/${data.vocab.kind})`);
  // Fixed held-out windows (their own seed), so every evaluation measures the same text.
  const evalRng = new Rng(o.seed + 7919);
  const last = data.heldOut.ids.length - io.T - 1;
  const evalStarts = Array.from({ length: 8 }, () => Array.from({ length: o.batch }, () => Math.floor(evalRng.uniform() * (last + 1))));
  const rng = new Rng(o.seed);
  const every = Math.max(1, Math.round(o.steps / 10));
  const r: TextTrainResult = { losses: [], heldOut: [], every };
  const bar = new ProgressBar({ total: o.steps, label: "train", unit: "steps", stream: o.progress ?? process.stderr, logIntervalMs: 5000 });
  let sum = 0, n = 0, recent = 0;
  for (let s = 1; s <= o.steps; s++) {
    const { x, y } = data.train.randomBatch(rng, o.batch, io.T);
    const loss = await step({ [io.x]: x, [io.y]: y }, s);
    sum += loss;
    n++;
    recent = recent === 0 ? loss : 0.9 * recent + 0.1 * loss;
    bar.tick(1, { loss: recent });
    if (s % every === 0 || s === o.steps) {
      r.losses.push(sum / n);
      r.heldOut.push(meanLoss(mod, evalFn.name, data.heldOut, evalStarts, io.T, io));
      sum = 0;
      n = 0;
    }
  }
  bar.finish({ loss: recent });
  r.losses.forEach((l, i) => out(`step ${Math.min((i + 1) * every, o.steps)}/${o.steps}  train loss ${l.toFixed(4)}  held-out loss ${r.heldOut[i]!.toFixed(4)}`));
  out(`kiln: held-out loss ${r.heldOut.at(-1)!.toFixed(4)} nats/${data.vocab.kind} on ${evalStarts.length * o.batch} windows of ${io.T} from the last 10% of ${o.file}`);
  if (forward && o.sampleChars > 0) {
    const prompt = data.heldOut.ids.subarray(0, io.T);
    const ids = generate(mod, prompt, { fn: forward.name, input: forward.inputs[0]!.name, context: io.T, count: o.sampleChars, temperature: 0.8, seed: o.seed, vocab: data.vocab.size });
    r.sample = data.vocab.decode(ids.subarray(io.T));
    out(`kiln: sample (temperature 0.8) after the held-out prompt ${JSON.stringify(data.vocab.decode(prompt))}:\n${r.sample}`);
  }
  return r;
}

function ioShape(f: Graph): readonly (number | string)[] {
  return f.nodes[f.outputs[0]!.node]!.type.shape;
}
