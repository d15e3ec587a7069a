// Bundle export, the linker: the compiled runtime's ES modules (dist/runtime, tsc output) that an entry imports,
// joined into one script. Each module becomes a function run once, in dependency order, returning its exports.
// tsc's output uses only `import { a, b as c } from`, `export { ... } [from]`, `export * from` and `export`
// declarations, and the runtime's import graph has no cycles (checked here), so exports are plain values read
// after the exporting module has run: no live bindings are needed.

import { readFile } from "node:fs/promises";
import { join, posix } from "node:path";

const IMPORT = /^import \{([^}]*)\} from "([^"]+)";$/;
const EXPORT_FROM = /^export \{([^}]*)\} from "([^"]+)";$/;
const EXPORT_STAR = /^export \* from "([^"]+)";$/;
const EXPORT_LOCAL = /^export \{([^}]*)\};$/;
// `export let`/`var` could be reassigned later, which copied exports would not see: refused below.
const EXPORT_DECL = /^export ((?:async )?function\*? ([A-Za-z_$][\w$]*)|class ([A-Za-z_$][\w$]*)|const ([A-Za-z_$][\w$]*))/;

interface Spec {
  local: string;
  imported: string;
}

function specs(list: string): Spec[] {
  return list.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s);
    if (!m) throw new Error(`bundle: cannot read import/export list item '${s}'`);
    return { imported: m[1], local: m[2] ?? m[1] };
  });
}

interface Linked {
  id: string;
  deps: string[];
  body: string;
}

/** Rewrites one module's import/export statements; `resolve` turns a specifier into a module id. */
function rewrite(id: string, text: string, resolve: (spec: string) => string): Linked {
  const deps: string[] = [];
  const exported: string[] = [];
  const out: string[] = [];
  const dep = (spec: string) => {
    const d = resolve(spec);
    if (!deps.includes(d)) deps.push(d);
    return `__kiln_modules[${JSON.stringify(d)}]`;
  };
  for (const line of text.split("\n")) {
    if (/^\/\/# sourceMappingURL=/.test(line)) continue;
    let m: RegExpExecArray | null;
    if ((m = IMPORT.exec(line))) out.push(`const { ${specs(m[1]).map((s) => (s.local === s.imported ? s.local : `${s.imported}: ${s.local}`)).join(", ")} } = ${dep(m[2])};`);
    else if ((m = EXPORT_FROM.exec(line))) {
      const from = dep(m[2]);
      for (const s of specs(m[1])) exported.push(`${JSON.stringify(s.local)}: ${from}.${s.imported}`);
    } else if ((m = EXPORT_STAR.exec(line))) out.push(`Object.assign(__exports, ${dep(m[1])});`);
    else if ((m = EXPORT_LOCAL.exec(line))) for (const s of specs(m[1])) exported.push(`${JSON.stringify(s.local)}: ${s.imported}`);
    else if ((m = EXPORT_DECL.exec(line))) {
      const name = m[2] ?? m[3] ?? m[4];
      exported.push(`${JSON.stringify(name)}: ${name}`);
      out.push(line.slice("export ".length));
    } else if (/^(import|export)\b/.test(line)) throw new Error(`bundle: ${id}: unsupported module syntax: ${line}`);
    else out.push(line);
  }
  const body = `const __exports = {};\n${out.join("\n").trim()}\nreturn Object.assign(__exports, { ${exported.join(", ")} });`;
  return { id, deps, body };
}

/**
 * The modules reachable from `entries` (ids relative to `root`, e.g. "wasm/module.js"), as one script that defines
 * `__kiln_modules` (id -> exports), in dependency order. Deterministic: the order follows the import statements.
 */
export async function linkRuntime(root: string, entries: readonly string[]): Promise<{ script: string; modules: string[] }> {
  const linked = new Map<string, Linked>();
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = async (id: string, chain: string[]) => {
    if (order.includes(id)) return;
    if (visiting.has(id)) throw new Error(`bundle: the runtime's imports form a cycle: ${[...chain, id].join(" -> ")}`);
    visiting.add(id);
    const text = await readFile(join(root, ...id.split("/")), "utf8");
    const l = rewrite(id, text, (spec) => {
      if (!spec.startsWith(".")) throw new Error(`bundle: ${id} imports '${spec}', which is not part of the runtime`);
      return posix.normalize(posix.join(posix.dirname(id), spec));
    });
    linked.set(id, l);
    for (const d of l.deps) await visit(d, [...chain, id]);
    visiting.delete(id);
    order.push(id);
  };
  for (const e of entries) await visit(e, []);
  const parts = order.map((id) => `// ---- runtime/${id}\n__kiln_modules[${JSON.stringify(id)}] = (() => {\n${linked.get(id)!.body}\n})();`);
  return { script: `const __kiln_modules = {};\n${parts.join("\n")}\n`, modules: order };
}

