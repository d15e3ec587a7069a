// cross_entropy's options against torch.nn.functional.cross_entropy (PyTorch 1.13): label_smoothing, ignore_index
// (the default -100 outside the classes and a valid class), class weights (torch's weighted mean, divided by the
// summed weights of the targets kept) and their combinations, and soft targets — loss and gradient w.r.t. the
// logits on wasm and on the float64 reference. Goldens: the "ce" entry of test/train/train-utils-torch.json,
// written by scripts/torch-train-utils-goldens.py. Also: the run-time label check with ignore_index exempt, and
// the diagnostics for bad options.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { irOf, runBoth, wasmModule } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { GOLDENS } from "./lin-helpers.js";

const LOGITS = [1.0, 2.0, 0.5, -1.0, 0.3, -0.2, 1.5, 0.0, 2.0, 0.1, -0.5, 0.7, -1.0, 0.0, 1.0, 2.0, 0.2, 0.2, 0.2, 0.2];
const LABELS = [1, 2, 0, 3, 2];
const IGNORED = [1, -100, 0, 3, -100];
const IGNORED2 = [1, 2, 0, 2, 3];
const WEIGHTS = [0.5, 2.0, 1.0, 3.0];
const ce = GOLDENS.ce as Record<string, { loss: number; grad: number[] }>;
const PROBS = GOLDENS.ce.probs as number[];

const src = (target: string, opts: string) => `
fn ce(x: f32[5, 4], y: ${target}, w: f32[4]) -> f32 { return cross_entropy(x, y${opts}) }
fn f(x: f32[5, 4], y: ${target}, w: f32[4]) -> (f32, f32[5, 4]) { return value_and_grad(ce)(x, y, w) }`;

async function check(name: string, labels: number[] | "probs", opts: string) {
  const soft = labels === "probs";
  const ir = irOf(src(soft ? "f32[5, 4]" : "i32[5]", opts));
  const { wasm, ref } = await runBoth(ir, "f", {
    x: { dtype: "f32", shape: [5, 4], data: LOGITS },
    y: soft ? { dtype: "f32", shape: [5, 4], data: PROBS } : { dtype: "i32", shape: [5], data: labels },
    w: { dtype: "f32", shape: [4], data: WEIGHTS },
  });
  const want = ce[name];
  expect(Math.abs((wasm[0].data[0] as number) - want.loss), `${name} loss on wasm`).toBeLessThan(2e-6);
  expect(Math.abs(ref[0].data[0] - want.loss), `${name} loss on the reference`).toBeLessThan(1e-6);
  want.grad.forEach((g, i) => {
    expect(Math.abs((wasm[1].data[i] as number) - g), `${name} grad[${i}] on wasm`).toBeLessThan(2e-6);
    expect(Math.abs(ref[1].data[i] - g), `${name} grad[${i}] on the reference`).toBeLessThan(1e-6);
  });
}

describe("cross_entropy against torch.nn.functional.cross_entropy", () => {
  it("plain", () => check("plain", LABELS, ""));
  it("label_smoothing", () => check("smooth", LABELS, ", label_smoothing: 0.1"));
  it("class weights (weighted mean)", () => check("weight", LABELS, ", weight: w"));
  it("weights with label smoothing", () => check("weight_smooth", LABELS, ", weight: w, label_smoothing: 0.2"));
  it("ignore_index -100 (PyTorch's default value, given explicitly)", () => check("ignore", IGNORED, ", ignore_index: -100"));
  it("ignore_index with label smoothing (mean over the targets kept)", () => check("ignore_smooth", IGNORED, ", ignore_index: -100, label_smoothing: 0.1"));
  it("ignore_index, weights and label smoothing", () => check("ignore_weight_smooth", IGNORED, ", ignore_index: -100, weight: w, label_smoothing: 0.3"));
  it("ignore_index naming a valid class, positional weight", () => check("ignore_valid_class_weight", IGNORED2, ", w, ignore_index: 2"));
  it("soft targets", () => check("soft", "probs", ""));
  it("soft targets with weights and label smoothing", () => check("soft_weight_smooth", "probs", ", weight: w, label_smoothing: 0.1"));
});

describe("cross_entropy's label check and diagnostics", () => {
  it("labels outside [0, C) are a KilnError; the ignore_index is exempt, through a reshape too", async () => {
    const mod = await wasmModule(irOf(`fn f(x: f32[4, 3], y: i32[2, 2]) -> f32 { return cross_entropy(x, reshape(y, [4]), ignore_index: -1) }
fn g(x: f32[4, 3], y: i32[4]) -> f32 { return cross_entropy(x, y, label_smoothing: 0.1) }`));
    const x = new Tensor("f32", [4, 3], Array.from({ length: 12 }, (_, i) => i / 10));
    expect(Number.isFinite(mod.call("f", { x, y: new Tensor("i32", [2, 2], [0, -1, 2, 1]) }).data[0] as number)).toBe(true);
    expect(() => mod.call("f", { x, y: new Tensor("i32", [2, 2], [0, -2, 2, 1]) })).toThrow(/input "y" element 1 is -2, not a class label in \[0, 3\) \(3 classes\) or the ignore_index -1/);
    expect(() => mod.call("f", { x, y: new Tensor("i32", [2, 2], [0, 3, 2, 1]) })).toThrow(/element 1 is 3, not a class label/);
    expect(() => mod.call("g", { x, y: new Tensor("i32", [4], [0, 1, 7, 1]) })).toThrow(/input "y" element 2 is 7, not a class label in \[0, 3\) \(3 classes\)$/);
  });
  it("an input also used without ignore_index keeps the full check", async () => {
    const mod = await wasmModule(irOf(`fn f(x: f32[2, 3], y: i32[2]) -> f32 { return cross_entropy(x, y, ignore_index: -1) + sum(one_hot(y, 3)) }`));
    expect(() => mod.call("f", { x: new Tensor("f32", [2, 3], [0, 0, 0, 0, 0, 0]), y: new Tensor("i32", [2], [-1, 0]) })).toThrow(/element 0 is -1, not a class label in \[0, 3\) \(3 classes\)$/);
  });
  const bad: [string, string, string][] = [
    ["label_smoothing above 1", "cross_entropy(x, y, label_smoothing: 1.5)", "K411"],
    ["label_smoothing not constant", "cross_entropy(x, y, label_smoothing: sum(x))", "K304"],
    ["ignore_index not an integer", "cross_entropy(x, y, ignore_index: 0.5)", "K304"],
    ["weight of the wrong size", "cross_entropy(x, y, weight: w3)", "K409"],
    ["ignore_index with probabilities", "cross_entropy(x, p, ignore_index: 1)", "K411"],
    ["probabilities of the wrong shape", "cross_entropy(x, q)", "K409"],
  ];
  for (const [name, call, code] of bad) {
    it(name, () => {
      const r = compileToIR(`fn f(x: f32[2, 4], y: i32[2], p: f32[2, 4], q: f32[2, 3], w3: f32[3]) -> f32 { return ${call} }`, "t.kiln");
      expect(r.ir).toBeUndefined();
      expect(r.diagnostics.map((d) => d.code)).toEqual([code]);
    });
  }
});
