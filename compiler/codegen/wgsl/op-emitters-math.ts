// Codegen stage (WGSL): element expressions of the math primitives of issue 16, spread into WGSL_LOWERING.
// Transcendentals and remainder call prelude-math.ts helpers; WGSL's round() is half to even, like torch's.
import type { DType } from "../../ir/types.js";
import type { HelperName } from "./prelude.js";
import type { WgslLowering } from "./op-emitter-types.js";

const isF = (t: DType | undefined): boolean => t === "f32" || t === "f16" || t === "bf16";

function floatOnly(op: string, t: DType | undefined): void {
  if (!isF(t)) throw new Error(`wgsl backend: ${op} needs a float operand, got ${t}`);
}

const call = (op: string, helper: HelperName, fn: string, extra = ""): WgslLowering => ({
  kind: "elementwise",
  emit: (c, args, [t]) => {
    floatOnly(op, t);
    c.use(helper);
    return `${fn}(${args.join(", ")}${extra})`;
  },
});

/** Integers are whole already. */
const rounding = (fn: string): WgslLowering => ({ kind: "elementwise", emit: (_c, [x], [t]) => (isF(t) ? `${fn}(${x})` : x!) });

export const MATH_WGSL_LOWERING = {
  erf: call("erf", "erf", "kiln_erf"),
  sin: call("sin", "sincos", "kiln_sincos", ", false"),
  cos: call("cos", "sincos", "kiln_sincos", ", true"),
  log1p: call("log1p", "log1p", "kiln_log1p"),
  expm1: call("expm1", "expm1", "kiln_expm1"),
  floor: rounding("floor"),
  ceil: rounding("ceil"),
  round: rounding("round"),
  // (x > 0) - (x < 0): ±0 and NaN give 0, as torch.sign does.
  sign: {
    kind: "elementwise",
    emit: (_c, [x], [t]) => (isF(t)
      ? `f32(select(0i, 1i, ${x} > 0.0f) - select(0i, 1i, ${x} < 0.0f))`
      : `(select(0i, 1i, ${x} > 0i) - select(0i, 1i, ${x} < 0i))`),
  },
  remainder: call("remainder", "remainder", "kiln_remainder"),
} satisfies Record<string, WgslLowering>;
