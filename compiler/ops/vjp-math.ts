// Op registry, gradients of the math primitives of issue 16 (erf, sin, cos, log1p, expm1, the rounding family
// and remainder), spread into VJP_RULES. Derivatives follow PyTorch's derivatives.yaml.

import { unbroadcast, zerosLike, type GradEmitter, type VjpRule } from "./vjp-core.js";

type MathOp = "erf" | "sin" | "cos" | "log1p" | "expm1" | "sign" | "floor" | "ceil" | "round" | "remainder";

const mul = (e: GradEmitter, a: number, b: number) => e.emit("mul", [a, b], {});
const k = (e: GradEmitter, v: number, like: number) => e.constant(v, e.type(like).dtype);

/** Piecewise constant: zero almost everywhere (PyTorch returns zeros, not an error). */
const flat: VjpRule = (e, n) => [zerosLike(e, n.inputs[0])];

export const MATH_VJP_RULES: { readonly [P in MathOp]: VjpRule<P> } = {
  // d/dx erf(x) = 2/sqrt(pi) * exp(-x^2)
  erf: (e, n, ct) => {
    const x = n.inputs[0];
    const g = mul(e, k(e, 2 / Math.sqrt(Math.PI), x), e.emit("exp", [e.emit("neg", [mul(e, x, x)], {})], {}));
    return [mul(e, ct, g)];
  },
  sin: (e, n, ct) => [mul(e, ct, e.emit("cos", [n.inputs[0]], {}))],
  cos: (e, n, ct) => [mul(e, ct, e.emit("neg", [e.emit("sin", [n.inputs[0]], {})], {}))],
  log1p: (e, n, ct) => [e.emit("div", [ct, e.emit("add", [n.inputs[0], k(e, 1, ct)], {})], {})],
  // expm1(x) + 1 = exp(x), without a second exp
  expm1: (e, n, ct) => [mul(e, ct, e.emit("add", [n.id, k(e, 1, ct)], {}))],
  sign: flat as VjpRule<"sign">,
  floor: flat as VjpRule<"floor">,
  ceil: flat as VjpRule<"ceil">,
  round: flat as VjpRule<"round">,
  // remainder(a, b) = a - b * floor(a / b): d/da = 1, d/db = -floor(a / b)
  remainder: (e, n, ct) => {
    const [a, b] = n.inputs;
    const q = e.emit("floor", [e.emit("div", [a, b], {})], {});
    return [unbroadcast(e, ct, e.type(a).shape), unbroadcast(e, e.emit("neg", [mul(e, ct, q)], {}), e.type(b).shape)];
  },
};
