// Call-input checking and symbolic dim binding: options.dims / batch, then Tensor shapes, then flat lengths with
// one unbound symbol. Every failure is a KilnError naming the function, the input, expected vs actual.

import type { FunctionManifest, TensorSig } from "./manifest.js";
import { KilnError } from "./errors.js";
import {
  describeTypedArray, describeValue, encodeValues, isTypedArray, typedArrayCtor, typedArrayMatches,
  type AnyTypedArray,
} from "./dtype.js";
import { isTensor, Tensor } from "./tensor.js";
import { bindDerived, checkDimLimits, derivedDimsOf } from "./dim-expr.js";
import type { OutBuffers } from "./out-buffers.js";

export type NestedArray = ReadonlyArray<number | boolean | NestedArray>;
/** What a call accepts for one input. */
export type InputValue = Tensor | AnyTypedArray | ReadonlyArray<number> | ReadonlyArray<boolean> | NestedArray | number | boolean;
export type CallInputs = Record<string, InputValue>;

/** A call's options; `O` narrows `out` (a generated .d.ts names each function's outputs there). */
export interface CallOptions<O = OutBuffers> {
  /** Values for symbolic dims, e.g. { B: 32 }. */
  dims?: Record<string, number>;
  /** Shorthand binding the function's first symbolic dim (FunctionManifest.dims[0]). */
  batch?: number;
  /** Check every kernel's result for NaN/Inf and throw a KilnError naming the first tensor that has one. */
  checkNumerics?: boolean;
  /**
   * Buffers the results are written into, reused across calls: `{ y: myFloat32Array }` by output name (any
   * subset; the others get fresh arrays), or one typed array / Tensor for a one-output function. Each must be the
   * output's dtype and size at the call's dims (a Tensor: its shape); the returned Tensor's data is that buffer.
   * wasm backend only (on WebGPU results stay on the GPU: `await t.read()`).
   */
  out?: O;
}

export interface BoundCall {
  dims: Record<string, number>;
  /** Input elements in the input's dtype, parallel to fn.inputs. */
  data: AnyTypedArray[];
}

interface Given {
  sig: TensorSig;
  kind: "tensor" | "typed" | "flat" | "nested" | "scalar";
  /** Known shape (Tensor / nested array). */
  shape?: number[];
  raw: unknown;
  length: number;
  /** "a Float32Array of length 3000" */
  desc: () => string;
}

export function isPlainInputValue(v: unknown): boolean {
  return isTensor(v) || ArrayBuffer.isView(v) || Array.isArray(v) || typeof v === "number" || typeof v === "boolean";
}


/**
 * Marks a stand-in Tensor for an input whose data already lives on a device (a GpuTensor): it carries the
 * dtype and shape for the checks below but no host data, so isTensor's data check cannot accept it.
 */
export const DEVICE_PLACEHOLDER: unique symbol = Symbol("kiln.devicePlaceholder");

function isDevicePlaceholder(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && (v as { [DEVICE_PLACEHOLDER]?: unknown })[DEVICE_PLACEHOLDER] === true;
}

/** What bindCall needs of a function that no call changes: worked out once per manifest function. */
interface FnFacts {
  inputNames: string[];
  /** The symbols a call may bind (fn.dims and the inputs' symbolic dims), in order. */
  known: ReadonlySet<string>;
  /** Derived dims of the values and outputs (bindDerived). */
  derived: string[];
}

const FACTS = new WeakMap<FunctionManifest, FnFacts>();

function factsOf(fn: FunctionManifest): FnFacts {
  let f = FACTS.get(fn);
  if (!f) {
    const known = new Set<string>(fn.dims);
    for (const sig of fn.inputs) for (const d of sig.shape) if (typeof d === "string") known.add(d);
    f = { inputNames: fn.inputs.map((i) => i.name), known, derived: derivedDimsOf([...fn.values.map((v) => v.shape), ...fn.outputs.map((o) => o.shape)]) };
    FACTS.set(fn, f);
  }
  return f;
}

export function bindCall(fn: FunctionManifest, inputsArg: unknown, options: CallOptions | undefined): BoundCall {
  const fname = fn.name;
  const { inputNames, known, derived } = factsOf(fn);
  const listInputs = () => (inputNames.length ? inputNames.map((n) => `"${n}"`).join(", ") : "none");

  // A lone value is accepted for a one-input function.
  let inputs: Record<string, unknown>;
  if (isPlainInputValue(inputsArg)) {
    if (fn.inputs.length !== 1) {
      throw new KilnError(`${fname}: pass the inputs as an object { ${inputNames.join(", ")} } (the function has ${fn.inputs.length} inputs)`, { code: "missing_input", fn: fname });
    }
    inputs = { [fn.inputs[0]!.name]: inputsArg };
  } else if (inputsArg === undefined && fn.inputs.length === 0) {
    inputs = {};
  } else if (typeof inputsArg !== "object" || inputsArg === null) {
    throw new KilnError(`${fname}: inputs must be an object { ${inputNames.join(", ")} }, got ${describeValue(inputsArg)}`, { code: "missing_input", fn: fname });
  } else inputs = inputsArg as Record<string, unknown>;

  for (const key of Object.keys(inputs)) {
    if (!inputNames.includes(key)) {
      throw new KilnError(`${fname}: unknown input "${key}" (expected inputs: ${listInputs()})`, { code: "unknown_input", fn: fname, tensor: key });
    }
  }

  // ---- classify inputs and check dtypes ----
  const given: Given[] = fn.inputs.map((sig) => {
    const v = inputs[sig.name];
    // Messages are built only when thrown: a serving loop pays for no string per call.
    const expectedOf = () => `${sig.dtype}[${sig.shape.join(", ")}]`;
    const fail = (actual: string, code: "input_dtype" | "missing_input" | "input_shape" = "input_dtype", hint = ""): never => {
      const expected = expectedOf();
      throw new KilnError(`${fname}: input "${sig.name}" expected ${expected} but got ${actual}${hint}`, { code, fn: fname, tensor: sig.name, expected, actual });
    };
    if (v === undefined) {
      const expected = expectedOf();
      throw new KilnError(`${fname}: missing input "${sig.name}" (${expected}); expected inputs: ${listInputs()}`, { code: "missing_input", fn: fname, tensor: sig.name, expected });
    }
    if (isTensor(v) || isDevicePlaceholder(v)) {
      if (v.dtype !== sig.dtype) fail(`a Tensor of dtype ${v.dtype} (shape [${v.shape.join(", ")}])`);
      return { sig, kind: "tensor", shape: v.shape, raw: v, length: v.size, desc: () => `a Tensor of shape [${v.shape.join(", ")}]` };
    }
    if (isTypedArray(v)) {
      if (!typedArrayMatches(sig.dtype, v)) {
        const want = typedArrayCtor(sig.dtype).name;
        fail(`${describeTypedArray(v)} (${typedArrayDtypeGuess(v)})`, "input_dtype", `; pass a ${want}, a Tensor of dtype ${sig.dtype} or a plain number[]`);
      }
      return { sig, kind: "typed", raw: v, length: v.length, desc: () => `${describeTypedArray(v)} of length ${v.length}` };
    }
    if (Array.isArray(v)) {
      if (v.some((e) => Array.isArray(e))) {
        const { shape, flat } = flattenNested(v, () => fail("a ragged nested array", "input_shape"));
        return { sig, kind: "nested", shape, raw: flat, length: flat.length, desc: () => `a nested array of shape [${shape.join(", ")}]` };
      }
      return { sig, kind: "flat", raw: v, length: v.length, desc: () => `an array of length ${v.length}` };
    }
    if (typeof v === "number" || typeof v === "boolean") {
      return { sig, kind: "scalar", raw: v, length: 1, desc: () => `a ${typeof v} (${String(v)})` };
    }
    return fail(describeValue(v));
  });

  // ---- bind dims ----
  const dims: Record<string, number> = {};
  const source: Record<string, string> = {};
  const listDims = () => (known.size ? [...known].join(", ") : "none");

  const bind = (sym: string, value: number, from: string, tensor?: string) => {
    if (!Number.isInteger(value) || value <= 0) {
      throw new KilnError(`${fname}: dimension ${sym} must be a positive integer, got ${value} (from ${from})`, { code: "dim_invalid", fn: fname, tensor: tensor ?? sym, actual: String(value) });
    }
    const prev = dims[sym];
    if (prev !== undefined && prev !== value) {
      throw new KilnError(`${fname}: conflicting values for dimension ${sym}: ${prev} (from ${source[sym]}) and ${value} (from ${from})`, { code: "dim_conflict", fn: fname, tensor: tensor ?? sym, expected: `${sym}=${prev}`, actual: `${sym}=${value}` });
    }
    dims[sym] = value;
    source[sym] ??= from;
  };

  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new KilnError(`${fname}: options must be an object like { dims: { B: 4 } } or { batch: 4 }, got ${describeValue(options)}`, { code: "bad_option", fn: fname });
  }
  if (options?.dims !== undefined) {
    if (typeof options.dims !== "object" || options.dims === null) {
      throw new KilnError(`${fname}: options.dims must be an object like { B: 4 }`, { code: "bad_option", fn: fname });
    }
    for (const [sym, value] of Object.entries(options.dims)) {
      if (!known.has(sym)) {
        throw new KilnError(`${fname}: unknown dimension ${sym} in options.dims (the function's dims: ${listDims()})`, { code: "dim_invalid", fn: fname, tensor: sym });
      }
      bind(sym, value, "options.dims");
    }
  }
  if (options?.batch !== undefined) {
    const first = fn.dims[0];
    if (first === undefined) {
      throw new KilnError(`${fname}: options.batch was given but the function has no symbolic dims`, { code: "bad_option", fn: fname });
    }
    bind(first, options.batch, "options.batch");
  }

  for (const g of given) {
    if (!g.shape) continue;
    const sig = g.sig;
    const before = { ...dims }; // messages show the dims known before this input
    const mismatch = (): never => {
      const expected = `${sig.dtype}[${fmtShape(sig.shape, before)}]`;
      throw new KilnError(`${fname}: input "${sig.name}" expected ${expected} but got ${g.desc()}`, { code: "input_shape", fn: fname, tensor: sig.name, expected, actual: `[${g.shape!.join(", ")}]` });
    };
    if (g.shape.length !== sig.shape.length) mismatch();
    sig.shape.forEach((d, axis) => {
      const actual = g.shape![axis]!;
      if (typeof d === "number") {
        if (d !== actual) mismatch();
      } else if (dims[d] !== undefined && dims[d] !== actual) {
        if (before[d] === undefined) mismatch(); // e.g. [2, 3] for [N, N]
        throw new KilnError(`${fname}: input "${sig.name}" expected ${sig.dtype}[${fmtShape(sig.shape, dims)}] (${d}=${dims[d]} from ${source[d]}) but got ${g.desc()}`, { code: "dim_conflict", fn: fname, tensor: sig.name, expected: `${d}=${dims[d]}`, actual: `${d}=${actual}` });
      } else bind(d, actual, `input "${sig.name}" shape [${g.shape!.join(", ")}]`, sig.name);
    });
  }

  for (let progress = true; progress; ) {
    progress = false;
    for (const g of given) {
      if (g.kind !== "typed" && g.kind !== "flat") continue;
      const sig = g.sig;
      const unbound = new Map<string, number>();
      let knownProduct = 1;
      for (const d of sig.shape) {
        if (typeof d === "number") knownProduct *= d;
        else if (dims[d] !== undefined) knownProduct *= dims[d]!;
        else unbound.set(d, (unbound.get(d) ?? 0) + 1);
      }
      if (unbound.size !== 1 || knownProduct === 0) continue;
      const [sym, power] = [...unbound][0]!;
      const bad = (why: string): never => {
        const expected = `${sig.dtype}[${fmtShape(sig.shape, dims)}]`;
        throw new KilnError(`${fname}: input "${sig.name}" expected ${expected} but got ${g.desc()}, ${why}`, { code: "input_shape", fn: fname, tensor: sig.name, expected, actual: `${g.desc()}` });
      };
      if (g.length % knownProduct !== 0) bad(`which is not a multiple of ${knownProduct}`);
      const q = g.length / knownProduct;
      const root = intRoot(q, power);
      if (root === undefined) bad(`which is not ${knownProduct === 1 ? "" : knownProduct + "*"}${sym}^${power} for an integer ${sym}`);
      if (root === 0) bad(`so dimension ${sym} would be 0`);
      bind(sym, root!, `input "${sig.name}" length ${g.length}`, sig.name);
      progress = true;
    }
  }

  for (const sym of known) {
    if (dims[sym] === undefined) {
      throw new KilnError(`cannot infer dimension ${sym} of ${fname}: pass { dims: { ${sym}: n } }${fn.dims[0] === sym ? " (or { batch: n })" : ""} or a Tensor with a shape`, { code: "dim_unbound", fn: fname, tensor: sym });
    }
  }

  bindDerived(dims, derived, fname);
  checkDimLimits(dims, fn.limits, fname);

  // ---- lengths, and conversion to the input's dtype ----
  const data = given.map((g): AnyTypedArray => {
    const sig = g.sig;
    const shape = sig.shape.map((d) => (typeof d === "number" ? d : dims[d]!));
    const numel = shape.reduce((a, b) => a * b, 1);
    if (g.length !== numel || (g.kind === "scalar" && numel !== 1)) {
      const expected = `${sig.dtype}[${shape.join(", ")}]`;
      const syms = [...new Set(sig.shape.filter((d): d is string => typeof d === "string"))];
      const note = `${numel} element${numel === 1 ? "" : "s"}${syms.map((s) => `, ${s}=${dims[s]}`).join("")}`;
      throw new KilnError(`${fname}: input "${sig.name}" expected ${expected} (${note}) but got ${g.desc()}`, { code: "input_shape", fn: fname, tensor: sig.name, expected, actual: g.desc() });
    }
    if (g.kind === "tensor") return (g.raw as Tensor).data;
    if (g.kind === "typed") return g.raw as AnyTypedArray;
    const values = g.kind === "scalar" ? [g.raw] : (g.raw as unknown[]);
    const enc = encodeValues(sig.dtype, values);
    if ("bad" in enc) {
      throw new KilnError(`${fname}: input "${sig.name}" (${sig.dtype}) element ${enc.index} is ${enc.bad}, not a valid ${sig.dtype} value`, { code: "input_value", fn: fname, tensor: sig.name, expected: sig.dtype, actual: enc.bad });
    }
    return enc;
  });
  fn.inputs.forEach((sig, k) => {
    // A device-resident input's values are not here: its backend checks them (webgpu/input-checks.ts).
    if (isDevicePlaceholder(given[k]!.raw)) return;
    if (sig.classes !== undefined) checkClassLabels(fname, sig.name, sig.classes, data[k]!, sig.ignoreIndex);
    checkIndices(fname, sig, data[k]!, dims);
  });

  return { dims, data };
}

/** Labels outside [0, classes) would select no class: one_hot gives a zero row and the loss ignores it. */
export function checkClassLabels(fname: string, input: string, classes: number, labels: ArrayLike<number | bigint>, ignoreIndex?: number): void {
  for (let i = 0; i < labels.length; i++) {
    const v = Number(labels[i]);
    if ((v >= 0 && v < classes) || v === ignoreIndex) continue;
    const or = ignoreIndex !== undefined ? ` or the ignore_index ${ignoreIndex}` : "";
    throw new KilnError(`${fname}: input "${input}" element ${i} is ${v}, not a class label in [0, ${classes}) (${classes} classes)${or}`, {
      code: "input_value", fn: fname, tensor: input, expected: `0 <= label < ${classes}${ignoreIndex !== undefined ? ` or ${ignoreIndex}` : ""}`, actual: String(v),
    });
  }
}

/** A shape with bound symbols replaced by their values: "B, 784" or "4, 784". */
export function fmtShape(shape: readonly (number | string)[], dims: Record<string, number>): string {
  return shape.map((d) => (typeof d === "string" && dims[d] !== undefined ? String(dims[d]) : String(d))).join(", ");
}

function intRoot(q: number, k: number): number | undefined {
  if (k === 1) return q;
  const r = Math.round(q ** (1 / k));
  for (const c of [r - 1, r, r + 1]) if (c >= 0 && c ** k === q) return c;
  return undefined;
}

function flattenNested(v: readonly unknown[], ragged: () => never): { shape: number[]; flat: unknown[] } {
  const shape: number[] = [];
  for (let cur: unknown = v; Array.isArray(cur); cur = cur[0]) shape.push(cur.length);
  const flat: unknown[] = [];
  const walk = (x: unknown, axis: number) => {
    if (axis === shape.length) {
      if (Array.isArray(x)) ragged();
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[axis]) ragged();
    for (const e of x as unknown[]) walk(e, axis + 1);
  };
  walk(v, 0);
  return { shape, flat };
}

function typedArrayDtypeGuess(a: ArrayBufferView): string {
  const names: Record<string, string> = {
    Float32Array: "f32", Float64Array: "f64", Int32Array: "i32", Int8Array: "i8", Uint8Array: "u8/bool",
    Uint16Array: "f16/bf16", Int16Array: "i16, unsupported", Uint32Array: "u32, unsupported",
    Uint8ClampedArray: "u8 clamped, unsupported", BigInt64Array: "i64, unsupported", BigUint64Array: "u64, unsupported",
  };
  return names[a.constructor.name] ?? "unsupported";
}

/** An index input (TensorSig.bound): the first value outside [0, bound) is an error naming the input and where it is. */
export function checkIndices(fname: string, sig: TensorSig, data: ArrayLike<number>, dims: Record<string, number>): void {
  const n = sig.bound;
  if (n === undefined) return;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v >= 0 && v < n) continue;
    const shape = sig.shape.map((d) => (typeof d === "number" ? d : dims[d] ?? 1));
    const at: number[] = [];
    for (let k = shape.length - 1, r = i; k >= 0; k--) {
      at.unshift(r % shape[k]!);
      r = Math.floor(r / shape[k]!);
    }
    throw new KilnError(`${fname}: input "${sig.name}" has index ${v} at [${at.join(", ")}], out of range for an axis of ${n} (expected 0 to ${n - 1})`, { code: "input_value", fn: fname, tensor: sig.name, expected: `0..${n - 1}`, actual: String(v) });
  }
}
