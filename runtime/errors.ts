// Runtime errors: every failure the runtime reports (bad inputs, bad dims, param misuse, a broken module) is a
// KilnError whose message names the function, the tensor, and the expected vs actual shape/dtype.

/** Machine-readable category of a KilnError. */
export type KilnErrorCode =
  | "unknown_function"
  | "missing_input"
  | "unknown_input"
  | "input_dtype"
  | "input_shape"
  | "input_value"
  | "unknown_output"
  | "output_dtype"
  | "output_shape"
  | "dim_unbound"
  | "dim_conflict"
  | "dim_invalid"
  | "unknown_param"
  | "param_dtype"
  | "param_shape"
  | "bad_option"
  | "bad_manifest"
  | "bad_wasm"
  | "out_of_memory"
  | "kernel_trap"
  | "disposed"
  | "load_failed"
  | "index"
  | "non_finite"
  | "loss_scale_collapsed"
  | "replica_failed"
  | "loop_bound";

export interface KilnErrorDetails {
  code?: KilnErrorCode;
  /** Qualified function name ("MLP.forward"), when the error is about a call. */
  fn?: string;
  /** Input, param or dim name the error is about. */
  tensor?: string;
  /** Expected dtype/shape, as written in the message (e.g. "f32[4, 784]"). */
  expected?: string;
  /** What was actually given (e.g. "Float32Array of length 3000"). */
  actual?: string;
  /** The data-parallel replica the error happened on (runtime/parallel/). */
  replica?: number;
  cause?: unknown;
}

export class KilnError extends Error {
  readonly code?: KilnErrorCode;
  readonly fn?: string;
  readonly tensor?: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly replica?: number;

  constructor(message: string, details: KilnErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "KilnError";
    if (details.code !== undefined) this.code = details.code;
    if (details.fn !== undefined) this.fn = details.fn;
    if (details.tensor !== undefined) this.tensor = details.tensor;
    if (details.expected !== undefined) this.expected = details.expected;
    if (details.actual !== undefined) this.actual = details.actual;
    if (details.replica !== undefined) this.replica = details.replica;
  }
}

/**
 * The error for a `for` loop whose run-time trip count is above its `max:` (iterations would be skipped
 * silently); undefined when the count fits. Shared by the wasm executor and the reference interpreter.
 */
export function loopBoundError(fn: string, c: { loop: string; max: number }, count: number): KilnError | undefined {
  if (!(count > c.max)) return undefined;
  return new KilnError(`${fn}: the loop ${c.loop} needs ${count} iterations, more than its max: ${c.max}; raise max: or pass a smaller bound`, { code: "loop_bound", fn });
}
