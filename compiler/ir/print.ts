// IR stage: the stable text form of an IRModule (`kiln compile --emit ir`, `--dump-after <pass>`, golden files).
// One line per node, `%id = op inputs {attrs} : type`; attrs are printed in key order so output is stable.

import { ioType, type Graph, type IRModule, type Node } from "./graph.js";
import { formatDim, formatType } from "./types.js";
import type { InitSpec } from "../../runtime/manifest.js";

function fmtAttr(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map((x) => (typeof x === "string" || typeof x === "number" ? formatDim(x) : fmtAttr(x))).join(", ") + "]";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

function fmtInit(i: InitSpec): string {
  const { kind, ...rest } = i;
  return `${kind}(${Object.entries(rest).map(([k, v]) => `${k}=${v}`).join(", ")})`;
}

export function printNode(n: Node): string {
  const keys = Object.keys(n.attrs).sort();
  const attrs = keys.length ? " {" + keys.map((k) => `${k}=${fmtAttr((n.attrs as Record<string, unknown>)[k])}`).join(", ") + "}" : "";
  const ins = n.inputs.map((i) => `%${i}`).join(", ");
  const guard = n.guard?.length ? "  if " + n.guard.map((g) => `${g.when ? "" : "!"}%${g.cond}`).join(" && ") : "";
  const fused = (n.fused !== undefined ? `  (fused into %${n.fused})` : n.storedBy !== undefined ? `  (stored by the kernel of %${n.storedBy})` : "")
    + (n.finiteInto !== undefined ? `  (checked for %${n.finiteInto})` : "");
  const autocast = n.precision ? `  @autocast(${n.precision})` : "";
  return `%${n.id} = ${n.op}${ins ? " " + ins : ""}${attrs} : ${formatType(n.type)}${guard}${fused}${autocast}`;
}

export function printGraph(g: Graph): string {
  // An input stored narrower than the caller passes it shows both: `x: f32[B, 784] as f16`.
  const sig = g.inputs.map((i) => `${i.name}: ${formatType(ioType(g, i))}${i.dtype ? ` as ${g.nodes[i.node].type.dtype}` : ""}`).join(", ");
  const res = g.outputs.map((o) => `${o.name}: ${formatType(g.nodes[o.node].type)}`).join(", ");
  const lines = [`fn ${g.name}(${sig}) -> (${res}) {`];
  for (const n of g.nodes) lines.push("  " + printNode(n));
  for (const u of g.updates ?? []) lines.push(`  update ${u.param} <- %${u.node}`);
  lines.push(`  return ${g.outputs.map((o) => `%${o.node}`).join(", ")}`, "}");
  return lines.join("\n");
}

export function printModule(m: IRModule): string {
  const parts = [`// kiln IR of ${m.source}${m.precision ? ` (precision mixed-${m.precision})` : ""}`];
  for (const p of m.params) {
    if (p.role === "copy") parts.push(`copy ${p.name}: ${formatType(p.type)} = cast(${p.copyOf})`);
    else parts.push(`${p.role === "state" ? "state" : "param"} ${p.name}: ${formatType(p.type)} = ${fmtInit(p.init)}`);
  }
  for (const g of m.functions) parts.push("", printGraph(g));
  return parts.join("\n") + "\n";
}
