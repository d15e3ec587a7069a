// Lowering stage, `@autocast(f16|bf16|f32)` on a fn or model method: which autocast region a body is lowered in
// (stamped on its nodes, including those of functions it inlines), and the checks that bad attributes get.

import type { FnDecl, Program } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import type { Autocast } from "../ir/graph.js";

const CHOICES: readonly Autocast[] = ["f16", "bf16", "f32"];

/** The region `fn` marks (the last well-formed `@autocast`), or undefined for none. */
export function autocastOf(fn: FnDecl): Autocast | undefined {
  let out: Autocast | undefined;
  for (const a of fn.attrs) {
    const arg = a.args[0];
    if (a.name === "autocast" && a.args.length === 1 && arg.kind === "name" && (CHOICES as readonly string[]).includes(arg.name)) out = arg.name as Autocast;
  }
  return out;
}

/** K305 for an unknown attribute, an autocast without exactly one dtype, or a dtype autocast cannot use. */
export function checkAttributes(p: Program, diags: DiagnosticBag): void {
  const fns: FnDecl[] = [];
  for (const item of p.items) {
    if (item.kind === "fn") fns.push(item);
    else if (item.kind === "model") fns.push(...item.methods);
  }
  for (const fn of fns) {
    for (const a of fn.attrs) {
      if (a.name !== "autocast") {
        diags.error("K305", `unknown attribute @${a.name} on '${fn.name}'`, a.span, "the only attribute is @autocast(f16), @autocast(bf16) or @autocast(f32)");
        continue;
      }
      const arg = a.args[0];
      const name = arg?.kind === "name" ? arg.name : undefined;
      if (a.args.length !== 1 || a.kwargs?.length || !name || !(CHOICES as readonly string[]).includes(name)) {
        const intish = name !== undefined && ["i32", "i8", "u8", "bool"].includes(name);
        diags.error(
          "K305",
          intish ? `@autocast(${name}) asks for low precision in an integer dtype: autocast only lowers float matmuls` : `@autocast needs one dtype: f16, bf16 or f32${name ? `, got ${name}` : ""}`,
          a.args.length === 1 ? arg.span : a.span,
          "write @autocast(f16) (or bf16; f32 switches mixed precision off for the function)",
        );
      }
    }
    if (fn.attrs.filter((a) => a.name === "autocast").length > 1) {
      diags.error("K305", `'${fn.name}' has more than one @autocast`, fn.attrs.filter((a) => a.name === "autocast")[1].span, "keep one");
    }
  }
}
