// The `kiln import` command: an ONNX model to a .kiln program and its weights (compiler/frontend/onnx/). The
// program is compiled before anything is written, and both files appear together or not at all.

import { readFile, rename, rm, mkdir, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { KilnError } from "../../runtime/errors.js";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { formatDiagnostics } from "../diagnostics.js";
import { fileProblem, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

/** Stages every file beside its destination, then renames them in; a failure removes what was staged. */
async function writeAll(dir: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const staged: [string, string][] = [...files.keys()].map((f) => [join(dir, `.${f}.partial-${process.pid}`), join(dir, f)]);
  try {
    for (const [tmp, dst] of staged) await writeFile(tmp, files.get(basename(dst))!);
    for (const [tmp, dst] of staged) await rename(tmp, dst);
  } catch (e) {
    for (const [tmp] of staged) await rm(tmp, { force: true });
    throw e;
  }
}

export const importCommand: Command = {
  name: "import",
  args: "MODEL.onnx",
  summary: "turn an ONNX model into a readable .kiln program and its weights (docs/deploy.md)",
  details: [
    "writes DIR/NAME.kiln (one model, params named after the initializers, one forward) and DIR/NAME.safetensors",
    "shape arithmetic (Shape, Gather, Concat, Constant) is folded, spelled-out LayerNorm/GELU fused back; an unsupported op is listed before anything is written",
  ],
  options: {
    out: { type: "string", value: "DIR", help: "the folder to write into (default: build/NAME)" },
  },
  run: importRun,
};

async function importRun(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const file = positionals[0];
  if (!file) throw new UsageError("missing MODEL.onnx");
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const why = await fileProblem(file);
  if (why) throw new KilnError(`kiln: cannot read '${file}': ${why}`);
  const name = basename(file, extname(file)).replace(/[^A-Za-z0-9_.-]/g, "_") || "model";
  const dir = str(v, "out") ?? join("build", name);
  const { importOnnx } = await import("../frontend/onnx/index.js");
  const r = importOnnx(await readFile(file), file, `${name}.safetensors`);
  const kilnFile = `${name}.kiln`;
  // The program must compile as written; a failure here is an importer bug, reported before anything is on disk.
  const { compileToIR } = await import("../compile.js");
  const c = compileToIR(r.source, join(dir, kilnFile));
  if (!c.ir) {
    throw new KilnError(`kiln: the program imported from ${file} does not compile (a kiln import bug; please report it with the model):\n${formatDiagnostics(c.diagnostics, { [join(dir, kilnFile)]: r.source })}`);
  }
  const weights = serializeSafetensors(r.weights, { format: "kiln-weights", source: `kiln import ${basename(file)}`, onnx_initializers: JSON.stringify(r.params) });
  await writeAll(dir, new Map<string, Uint8Array | string>([[kilnFile, r.source], [`${name}.safetensors`, weights]]));
  const n = Object.keys(r.weights).length;
  io.out(`kiln: imported ${file} -> ${join(dir, kilnFile)} (model ${r.model}, ${n} param${n === 1 ? "" : "s"}) and ${join(dir, `${name}.safetensors`)}`);
  return 0;
}
