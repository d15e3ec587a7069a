// IR stage: the verifier, run after lowering and after every pass. It re-checks what passes must preserve:
// dense ids in topological order, valid inputs and outputs, and types that agree with each op's shape rule.
// A failure is a compiler bug, reported with the pass name and the offending node.

import type { Graph, IRModule } from "./graph.js";
import { printNode } from "./print.js";
import { formatType } from "./types.js";
import { OPS } from "../ops/registry.js";
import { isRuleError, META_OPS, SOURCE_OPS, type SourceOp } from "../ops/types.js";

export function verifyGraph(g: Graph): string[] {
  const errs: string[] = [];
  g.nodes.forEach((n, i) => {
    const where = `${g.name}: ${printNode(n)}`;
    if (n.id !== i) errs.push(`${where}: id ${n.id} at position ${i}`);
    for (const inp of n.inputs) if (!(inp >= 0 && inp < i)) errs.push(`${where}: input %${inp} is not defined before use`);
    for (const gd of n.guard ?? []) {
      const c = g.nodes[gd.cond];
      if (!(gd.cond >= 0 && gd.cond < i) || c.type.dtype !== "bool" || c.type.shape.length !== 0) errs.push(`${where}: guard %${gd.cond} is not an earlier bool scalar`);
    }
    if ((SOURCE_OPS as readonly string[]).includes(n.op) || n.op === "cotangent") {
      if (n.inputs.length) errs.push(`${where}: ${n.op as SourceOp} node has inputs`);
      return;
    }
    if (errs.length) return;
    const def = OPS[n.op];
    if (typeof def.arity === "number" && def.arity !== n.inputs.length) errs.push(`${where}: ${n.op} takes ${def.arity} inputs`);
    const r = def.infer(n.inputs.map((x) => g.nodes[x].type), n.attrs as never);
    if (isRuleError(r)) errs.push(`${where}: ${r.message}`);
    else if (formatType(r) !== formatType(n.type)) errs.push(`${where}: type should be ${formatType(r)}`);
  });
  for (const o of [...g.inputs, ...g.outputs, ...(g.updates ?? []).map((u) => ({ name: `update of ${u.param}`, node: u.node }))]) if (!(o.node >= 0 && o.node < g.nodes.length)) errs.push(`${g.name}: ${o.name} refers to missing node %${o.node}`);
  return errs;
}

/** After autodiff, no gradient marker may remain, and no live cotangent placeholder. */
export function verifyNoMeta(g: Graph): string[] {
  return g.nodes.filter((n) => (META_OPS as readonly string[]).includes(n.op)).map((n) => `${g.name}: ${printNode(n)}: ${n.op} left after autodiff`);
}

export function verifyModule(m: IRModule, after: string): void {
  const errs = m.functions.flatMap(verifyGraph);
  if (errs.length) throw new Error(`internal compiler error: IR is invalid after ${after}:\n  ${errs.join("\n  ")}`);
}
