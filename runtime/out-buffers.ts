// Caller-provided result buffers (a call's `options.out`): checked against the outputs' names, dtypes and shapes
// at the call's dims before any kernel runs, so a serving loop can reuse its arrays instead of getting fresh ones
// (a fresh 1 MB result costs more than a softmax kernel over it: docs/performance.md, "Reused output buffers").

import type { FunctionManifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import { describeTypedArray, describeValue, isTypedArray, typedArrayCtor, typedArrayMatches, type AnyTypedArray } from "./dtype.js";
import { isTensor, Tensor } from "./tensor.js";

/** Where one output is written: the dtype's typed array (its length the output's size) or a Tensor of its shape. */
export type OutBuffer = AnyTypedArray | Tensor;
/** `options.out`: buffers by output name (any subset of the outputs), or one buffer for a one-output function. */
export type OutBuffers = OutBuffer | Readonly<Record<string, OutBuffer>>;

/** One output's destination: `data` receives the elements; `tensor` is returned as is (a Tensor was given). */
export interface OutTarget {
  data: AnyTypedArray;
  tensor?: Tensor;
}

/**
 * Per output of `fn` (in order), the caller's buffer or undefined (a fresh array). `shapes` are the outputs' shapes
 * at this call's dims. Every mismatch is a KilnError naming the output, expected and actual.
 */
export function resolveOutBuffers(fn: FunctionManifest, out: unknown, shapes: readonly (readonly number[])[]): (OutTarget | undefined)[] {
  const fname = fn.name;
  const names = fn.outputs.map((o) => o.name);
  const given: (unknown | undefined)[] = names.map(() => undefined);
  if (isTypedArray(out) || isTensor(out)) {
    if (fn.outputs.length !== 1) {
      throw new KilnError(`${fname}: options.out is one buffer but the function has ${fn.outputs.length} outputs; pass them by name: { ${names.map((n) => `${n}: ...`).join(", ")} }`, { code: "bad_option", fn: fname });
    }
    given[0] = out;
  } else if (typeof out === "object" && out !== null && !Array.isArray(out)) {
    for (const [key, value] of Object.entries(out)) {
      const k = names.indexOf(key);
      if (k < 0) {
        throw new KilnError(`${fname}: options.out names unknown output "${key}" (outputs: ${names.map((n) => `"${n}"`).join(", ") || "none"})`, { code: "unknown_output", fn: fname, tensor: key });
      }
      if (names.lastIndexOf(key) !== k) {
        throw new KilnError(`${fname}: options.out cannot name output "${key}": ${names.filter((n) => n === key).length} outputs share that name`, { code: "unknown_output", fn: fname, tensor: key });
      }
      given[k] = value;
    }
  } else {
    throw new KilnError(`${fname}: options.out must be an object of buffers by output name ({ ${names.map((n) => `${n}: ...`).join(", ")} }) or, for a one-output function, one typed array or Tensor; got ${describeValue(out)}`, { code: "bad_option", fn: fname });
  }

  const targets = given.map((v, k): OutTarget | undefined => {
    if (v === undefined) return undefined;
    const sig = fn.outputs[k]!;
    const shape = shapes[k]!;
    const numel = shape.reduce((a, b) => a * b, 1);
    const expected = `${sig.dtype}[${shape.join(", ")}]`;
    const want = typedArrayCtor(sig.dtype).name;
    const fail = (actual: string, code: "output_dtype" | "output_shape"): never => {
      throw new KilnError(`${fname}: options.out for output "${sig.name}" expected ${expected} (a ${want} of ${numel} elements or a Tensor of that shape) but got ${actual}`, { code, fn: fname, tensor: sig.name, expected, actual });
    };
    if (isTensor(v)) {
      if (v.dtype !== sig.dtype) fail(`a Tensor of dtype ${v.dtype} (shape [${v.shape.join(", ")}])`, "output_dtype");
      if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) fail(`a Tensor of shape [${v.shape.join(", ")}]`, "output_shape");
      return { data: v.data, tensor: v };
    }
    if (isTypedArray(v)) {
      if (!typedArrayMatches(sig.dtype, v)) fail(describeTypedArray(v), "output_dtype");
      if (v.length !== numel) fail(`${describeTypedArray(v)} of length ${v.length}`, "output_shape");
      return { data: v as AnyTypedArray };
    }
    return fail(describeValue(v), "output_dtype");
  });

  // Two outputs written to overlapping memory would leave one of them wrong without a word.
  for (let a = 0; a < targets.length; a++) {
    for (let b = a + 1; b < targets.length; b++) {
      const [x, y] = [targets[a]?.data, targets[b]?.data];
      if (!x || !y || x.buffer !== y.buffer || x.byteLength === 0 || y.byteLength === 0) continue;
      if (x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength) {
        throw new KilnError(`${fname}: options.out gives outputs "${names[a]}" and "${names[b]}" overlapping memory; each output needs its own buffer`, { code: "bad_option", fn: fname, tensor: names[b] });
      }
    }
  }
  return targets;
}

/** The output's Tensor: the caller's (its data now holding the result) or a new one around `data`. */
export function outTensor(target: OutTarget, dtype: Tensor["dtype"], shape: number[]): Tensor {
  return target.tensor ?? new Tensor(dtype, shape, target.data);
}
