// `kiln check`: parses, lowers and type-checks a .kiln file and reports its diagnostics; writes nothing.

import { frontend, readSource, type Command, type CommandIo, type Values } from "./common.js";

export const checkCommand: Command = {
  name: "check",
  args: "FILE.kiln",
  summary: "report diagnostics only (types, shapes, names); writes nothing",
  options: {},
  run: check,
};

async function check(_v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const r = await frontend(file, source, io);
  if (!r.ir) return 1;
  io.out(`kiln: ${file}: no errors (${r.ir.functions.length} function(s), ${r.ir.params.length} param(s))`);
  return 0;
}
