// Test helpers for the train-utility tests: the 2x2 linear model, batch and init that
// scripts/torch-train-utils-goldens.py gives PyTorch, and the goldens it wrote (train-utils-torch.json).
import { readFileSync } from "node:fs";
import { compileToIR } from "../../compiler/compile.js";
import { irOf, wasmModule } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import type { KilnModule } from "../../runtime/wasm/module.js";

export const GOLDENS = JSON.parse(readFileSync(new URL("./train-utils-torch.json", import.meta.url), "utf8")) as Record<string, number[][]> & { ce: Record<string, { loss: number; grad: number[] } | number[]> };

export const linSrc = (entries: string) => `
model M {
  param w: f32[2, 2] = constant(0)
  param b: f32[2] = zeros()
  fn loss(x: f32[3, 2], t: f32[3, 2]) -> f32 { return sum((x @ w + b - t) ** 2) }
}
train T { model: M, loss: loss, ${entries} }`;

export const BATCH = { x: new Tensor("f32", [3, 2], [1, 2, 3, -1, 0.5, 0.5]), t: new Tensor("f32", [3, 2], [1, 0, 0, 1, 2, -1]) };

export async function linModule(entries: string, precision?: "mixed-f16"): Promise<KilnModule> {
  const mod = await wasmModule(precision ? compileToIR(linSrc(entries), "t.kiln", [], [], { precision }).ir! : irOf(linSrc(entries)));
  mod.setParam("M.w", new Tensor("f32", [2, 2], [0.5, -0.3, 0.2, 0.8]));
  mod.setParam("M.b", new Tensor("f32", [2], [0.1, -0.1]));
  return mod;
}

export function params(mod: KilnModule): number[] {
  return [...Array.from(mod.getParam("M.w").data as Float32Array), ...Array.from(mod.getParam("M.b").data as Float32Array)];
}

