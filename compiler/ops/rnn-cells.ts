// Op registry, recurrent cells: lstm_cell and gru_cell with torch.nn.LSTMCell / GRUCell's weight layouts and gate
// orders (LSTM: input, forget, cell, output; GRU: reset, update, new), built from matmul, slices and the
// elementwise primitives. Argument checks are in compiler/lower/builtins-layers.ts.

import type { PrimEmitter } from "./composites.js";
import { sliceAttrs } from "./vjp.js";

type Id = number | undefined;

/** v @ w^T (+ b): w is [G * H, in] as PyTorch stores it. */
function affine(e: PrimEmitter, v: number, w: number, b: number | undefined): Id {
  const wt = e.emit("permute", [w], { perm: [1, 0] });
  const y = wt === undefined ? undefined : e.emit("matmul", [v, wt], {});
  return y === undefined || b === undefined ? y : e.emit("add", [y, b], {});
}

/** Gate k (of width n) of v [B, G * n]. */
function gate(e: PrimEmitter, v: Id, k: number, n: number): Id {
  return v === undefined ? undefined : e.emit("slice", [v], sliceAttrs(1, k * n, (k + 1) * n));
}

function op(e: PrimEmitter, name: "add" | "sub" | "mul", a: Id, b: Id): Id {
  return a === undefined || b === undefined ? undefined : e.emit(name, [a, b], {});
}

function act(e: PrimEmitter, name: "sigmoid" | "tanh", a: Id): Id {
  return a === undefined ? undefined : e.emit(name, [a], {});
}

export interface CellWeights {
  readonly wIh: number;
  readonly wHh: number;
  readonly bIh?: number;
  readonly bHh?: number;
}

/** One LSTM step: gates = x W_ih^T + b_ih + h W_hh^T + b_hh; c' = f c + i g; h' = o tanh(c'). */
export function lstmCell(e: PrimEmitter, x: number, h: number, c: number, w: CellWeights): { h: Id; c: Id } {
  const n = e.type(h).shape[1] as number;
  const gates = op(e, "add", affine(e, x, w.wIh, w.bIh), affine(e, h, w.wHh, w.bHh));
  const [i, f, g, o] = [0, 1, 2, 3].map((k) => act(e, k === 2 ? "tanh" : "sigmoid", gate(e, gates, k, n)));
  const c2 = op(e, "add", op(e, "mul", f, c), op(e, "mul", i, g));
  return { h: op(e, "mul", o, act(e, "tanh", c2)), c: c2 };
}

/** One GRU step: r, z from both sides; n = tanh(x_n + r (h W_hn^T + b_hn)); h' = (1 - z) n + z h. */
export function gruCell(e: PrimEmitter, x: number, h: number, w: CellWeights): Id {
  const n = e.type(h).shape[1] as number;
  const gi = affine(e, x, w.wIh, w.bIh);
  const gh = affine(e, h, w.wHh, w.bHh);
  const r = act(e, "sigmoid", op(e, "add", gate(e, gi, 0, n), gate(e, gh, 0, n)));
  const z = act(e, "sigmoid", op(e, "add", gate(e, gi, 1, n), gate(e, gh, 1, n)));
  const nn = act(e, "tanh", op(e, "add", gate(e, gi, 2, n), op(e, "mul", r, gate(e, gh, 2, n))));
  // (1 - z) n + z h written as n + z (h - n): one multiply fewer, the same value.
  return op(e, "add", nn, op(e, "mul", z, op(e, "sub", h, nn)));
}
