// Test helpers: hand-written wasm kernels (WAT compiled with binaryen) following the kernel calling convention
// (byte pointers, then i32 ints), and a hand-written Manifest using them.

import type { Manifest, FunctionManifest, ParamManifest } from "../../runtime/manifest.js";

const WAT = `
(module
  (import "env" "memory" (memory 1))
  ;; out[i] = a[i] + b[i], f32, n elements
  (func (export "add_f32") (param $a i32) (param $b i32) (param $out i32) (param $n i32)
    (local $i i32) (local $o i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (f32.add (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (i32.add (local.get $b) (local.get $o)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; out[r, c] = a[r, c] + b[c], f32
  (func (export "add_rows_f32") (param $a i32) (param $b i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $n i32) (local $o i32)
    (local.set $n (i32.mul (local.get $rows) (local.get $cols)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (f32.add (f32.load (i32.add (local.get $a) (local.get $o)))
                 (f32.load (i32.add (local.get $b) (i32.shl (i32.rem_u (local.get $i) (local.get $cols)) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; out[i] = a[i] * s[0], f32
  (func (export "mul_scalar_f32") (param $a i32) (param $s i32) (param $out i32) (param $n i32)
    (local $i i32) (local $o i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (f32.mul (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (local.get $s))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; out[i] = a[i] + b[i], i32
  (func (export "add_i32") (param $a i32) (param $b i32) (param $out i32) (param $n i32)
    (local $i i32) (local $o i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (i32.store (i32.add (local.get $out) (local.get $o))
        (i32.add (i32.load (i32.add (local.get $a) (local.get $o))) (i32.load (i32.add (local.get $b) (local.get $o)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; out[0] = sum(a[0..n)), f32
  (func (export "sum_f32") (param $a i32) (param $out i32) (param $n i32)
    (local $i i32) (local $acc f32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (f32.add (local.get $acc) (f32.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (f32.store (local.get $out) (local.get $acc)))
  ;; a kernel with a bug: reads far out of bounds
  (func (export "broken_f32") (param $a i32) (param $out i32) (param $n i32)
    (f32.store (local.get $out) (f32.load (i32.const -16))))
)`;

let cached: Uint8Array | undefined;

export async function kernelsWasm(): Promise<Uint8Array> {
  if (cached) return cached;
  const binaryen = (await import("binaryen")).default;
  const mod = binaryen.parseText(WAT);
  if (!mod.validate()) throw new Error("test kernels do not validate");
  cached = mod.emitBinary();
  mod.dispose();
  return cached;
}

/**
 * Net.forward(x: f32[B, 4]) -> y: f32[B, 2, 2]:  y = reshape((x + Net.b) * 2)
 * Net.stats(x: f32[B, 4]) -> (total: f32[], doubled: f32[B, 4])   (two outputs)
 * Other.forward(v: f32[N]) -> f32[N]: v + v (shares jsName "forward" with Net.forward)
 * addi(a: i32[N], b: i32[N]) -> i32[N]
 * square(m: f32[N, N]) -> f32[N, N]: m + m
 * scale(v: f32[N], s: f32[]) -> f32[N]: v * s
 * pair(a: f32[M, K], b: f32[K]) -> f32[M, K]: a + b (row broadcast); symbols in input shapes only
 * broken(x: f32[4]) -> f32[]: calls the trapping kernel
 */
export function testManifest(extraParams: ParamManifest[] = []): Manifest {
  const netForward: FunctionManifest = {
    name: "Net.forward",
    jsName: "forward",
    model: "Net",
    dims: ["B"],
    inputs: [{ name: "x", dtype: "f32", shape: ["B", 4] }],
    outputs: [{ name: "y", dtype: "f32", shape: ["B", 2, 2] }],
    outputValues: [4],
    values: [
      { dtype: "f32", shape: ["B", 4], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: [4], source: { kind: "param", name: "Net.b" } },
      { dtype: "f32", shape: ["B", 4], source: { kind: "temp" } },
      { dtype: "f32", shape: ["B", 4], source: { kind: "temp" } },
      { dtype: "f32", shape: ["B", 2, 2], source: { kind: "alias", of: 3 } },
      { dtype: "f32", shape: [], source: { kind: "const", value: 2 } },
    ],
    steps: [
      { kernel: "add_rows_f32", buffers: [0, 1, 2], ints: [[[1, "B"]], [[4]]], ops: ["add"] },
      { kernel: "mul_scalar_f32", buffers: [2, 5, 3], ints: [[[4, "B"]]], ops: ["mul"] },
    ],
  };
  const netStats: FunctionManifest = {
    name: "Net.stats",
    jsName: "stats",
    model: "Net",
    dims: ["B"],
    inputs: [{ name: "x", dtype: "f32", shape: ["B", 4] }],
    outputs: [
      { name: "total", dtype: "f32", shape: [] },
      { name: "doubled", dtype: "f32", shape: ["B", 4] },
    ],
    outputValues: [1, 2],
    values: [
      { dtype: "f32", shape: ["B", 4], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: [], source: { kind: "temp" } },
      { dtype: "f32", shape: ["B", 4], source: { kind: "temp" } },
    ],
    steps: [
      { kernel: "sum_f32", buffers: [0, 1], ints: [[[4, "B"]]], ops: ["sum"] },
      { kernel: "add_f32", buffers: [0, 0, 2], ints: [[[4, "B"]]], ops: ["add"] },
    ],
  };
  const otherForward: FunctionManifest = {
    name: "Other.forward",
    jsName: "forward",
    model: "Other",
    dims: ["N"],
    inputs: [{ name: "v", dtype: "f32", shape: ["N"] }],
    outputs: [{ name: "out", dtype: "f32", shape: ["N"] }],
    outputValues: [1],
    values: [
      { dtype: "f32", shape: ["N"], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: ["N"], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "add_f32", buffers: [0, 0, 1], ints: [[[1, "N"]]], ops: ["add"] }],
  };
  const addi: FunctionManifest = {
    name: "addi",
    jsName: "addi",
    dims: ["N"],
    inputs: [
      { name: "a", dtype: "i32", shape: ["N"] },
      { name: "b", dtype: "i32", shape: ["N"] },
    ],
    outputs: [{ name: "c", dtype: "i32", shape: ["N"] }],
    outputValues: [2],
    values: [
      { dtype: "i32", shape: ["N"], source: { kind: "input", index: 0 } },
      { dtype: "i32", shape: ["N"], source: { kind: "input", index: 1 } },
      { dtype: "i32", shape: ["N"], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "add_i32", buffers: [0, 1, 2], ints: [[[1, "N"]]], ops: ["add"] }],
  };
  const square: FunctionManifest = {
    name: "square",
    jsName: "square",
    dims: ["N"],
    inputs: [{ name: "m", dtype: "f32", shape: ["N", "N"] }],
    outputs: [{ name: "out", dtype: "f32", shape: ["N", "N"] }],
    outputValues: [1],
    values: [
      { dtype: "f32", shape: ["N", "N"], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: ["N", "N"], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "add_f32", buffers: [0, 0, 1], ints: [[[1, "N", "N"]]], ops: ["add"] }],
  };
  const scale: FunctionManifest = {
    name: "scale",
    jsName: "scale",
    dims: ["N"],
    inputs: [
      { name: "v", dtype: "f32", shape: ["N"] },
      { name: "s", dtype: "f32", shape: [] },
    ],
    outputs: [{ name: "out", dtype: "f32", shape: ["N"] }],
    outputValues: [2],
    values: [
      { dtype: "f32", shape: ["N"], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: [], source: { kind: "input", index: 1 } },
      { dtype: "f32", shape: ["N"], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "mul_scalar_f32", buffers: [0, 1, 2], ints: [[[1, "N"]]], ops: ["mul"] }],
  };
  const pair: FunctionManifest = {
    name: "pair",
    jsName: "pair",
    dims: ["M", "K"],
    inputs: [
      { name: "a", dtype: "f32", shape: ["M", "K"] },
      { name: "b", dtype: "f32", shape: ["K"] },
    ],
    outputs: [{ name: "out", dtype: "f32", shape: ["M", "K"] }],
    outputValues: [2],
    values: [
      { dtype: "f32", shape: ["M", "K"], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: ["K"], source: { kind: "input", index: 1 } },
      { dtype: "f32", shape: ["M", "K"], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "add_rows_f32", buffers: [0, 1, 2], ints: [[[1, "M"]], [[1, "K"]]], ops: ["add"] }],
  };
  const broken: FunctionManifest = {
    name: "broken",
    jsName: "broken",
    dims: [],
    inputs: [{ name: "x", dtype: "f32", shape: [4] }],
    outputs: [{ name: "y", dtype: "f32", shape: [] }],
    outputValues: [1],
    values: [
      { dtype: "f32", shape: [4], source: { kind: "input", index: 0 } },
      { dtype: "f32", shape: [], source: { kind: "temp" } },
    ],
    steps: [{ kernel: "broken_f32", buffers: [0, 1], ints: [[[4]]], ops: ["gather", "exp"] }],
  };
  return {
    format: "kiln-module",
    version: 1,
    compiler: "test",
    source: "test.kiln",
    wasm: "test.wasm",
    kernels: ["add_f32", "add_rows_f32", "mul_scalar_f32", "add_i32", "sum_f32", "broken_f32"],
    params: [
      { name: "Net.b", model: "Net", dtype: "f32", shape: [4], init: { kind: "constant", value: 0.5 } },
      ...extraParams,
    ],
    functions: [netForward, netStats, otherForward, addi, square, scale, pair, broken],
  };
}

/** Expects `fn` to throw a KilnError whose message contains every fragment; returns the error. */
export function expectKilnError(fn: () => unknown, ...fragments: (string | RegExp)[]): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    const err = e as Error & Record<string, unknown>;
    if (err.name !== "KilnError") throw new Error(`expected a KilnError, got ${err.name}: ${err.message}`);
    for (const f of fragments) {
      const ok = typeof f === "string" ? err.message.includes(f) : f.test(err.message);
      if (!ok) throw new Error(`KilnError message ${JSON.stringify(err.message)} lacks ${String(f)}`);
    }
    return err;
  }
  throw new Error("expected a KilnError, but nothing was thrown");
}
