// The `kiln` command line: one table of commands (each in its own file, declaring its options with help text),
// from which the usage, `kiln CMD --help` and the flag checks are generated. Every failure is one line naming
// the file (and position) and what to do: exit code 1 for errors, 2 for usage errors.

import { COMPILER_VERSION } from "../version.js";
import { closest } from "../suggest.js";
import { InputSpecError } from "./inputs.js";
import { KilnError } from "../../runtime/errors.js";
import { commandHelp, commandIo, parseCommandArgs, UsageError, type Command, type CommandIo } from "./common.js";
import { compileCommand } from "./compile.js";
import { runCommand } from "./run.js";
import { checkCommand } from "./check.js";
import { trainCommand } from "./train.js";
import { quantizeCommand } from "./quantize.js";
import { exportCommand } from "./export.js";
import { importCommand } from "./import.js";

/** The commands, in the order the usage lists them; a new command (export, import) is one more entry. */
export const COMMANDS: readonly Command[] = [compileCommand, runCommand, trainCommand, quantizeCommand, exportCommand, importCommand, checkCommand];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `kiln ${COMPILER_VERSION} — compile .kiln models to WebAssembly and WGSL`,
    "",
    "usage: kiln COMMAND FILE.kiln [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "kiln COMMAND --help lists a command's options; kiln --version prints the version.",
  ].join("\n");
}

/** Runs the CLI; returns the exit code. `out`/`err` default to stdout/stderr (tests capture them); `tty` is where transient lines (compiling…, progress bars) go. */
export async function main(argv: string[], out = (s: string) => console.log(s), err = (s: string) => console.error(s), tty: CommandIo["tty"] = process.stderr): Promise<number> {
  const [name, ...rest] = argv;
  const io = commandIo(out, err, tty);
  let cmd: Command | undefined;
  try {
    if (!name || name === "--help" || name === "-h" || name === "help") {
      const about = name === "help" && rest[0] ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
      if (name === "help" && rest[0] && !about) throw new UsageError(unknownCommand(rest[0]));
      out(about ? commandHelp(about) : usage());
      return name ? 0 : 2;
    }
    if (name === "--version" || name === "-v") {
      out(COMPILER_VERSION);
      return 0;
    }
    cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) throw new UsageError(unknownCommand(name));
    const end = rest.indexOf("--");
    if ((end < 0 ? rest : rest.slice(0, end)).some((a) => a === "--help" || a === "-h")) {
      out(commandHelp(cmd));
      return 0;
    }
    const { values, positionals } = parseCommandArgs(cmd, rest, COMMANDS);
    return await cmd.run(values, positionals, io);
  } catch (e) {
    if (e instanceof UsageError) {
      const help = (e.command ?? cmd?.name) ? COMMANDS.find((c) => c.name === (e.command ?? cmd?.name)) : undefined;
      io.err(`kiln: ${e.message}\n\n${help ? commandHelp(help) : usage()}`);
      return 2;
    }
    if (e instanceof KilnError || e instanceof InputSpecError) {
      io.err(e.message.startsWith("kiln:") ? e.message : `kiln: ${e.message}`);
      return 1;
    }
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      // A file the command writes or reads deeper down (an --out folder, a --save path): one line, not a trace.
      io.err(`kiln: ${fsMessage(e as NodeJS.ErrnoException)}`);
      return 1;
    }
    io.err(`kiln: internal error (please report): ${(e as Error).stack ?? e}`);
    return 3;
  } finally {
    io.done();
  }
}

function unknownCommand(name: string): string {
  const near = closest(name, COMMANDS.map((c) => c.name));
  return `unknown command '${name}'${near ? `; did you mean '${near}'?` : ""} (commands: ${COMMANDS.map((c) => c.name).join(", ")})`;
}

const FS_WORDS: Record<string, string> = {
  ENOENT: "no such file or folder", EISDIR: "it is a directory, not a file", ENOTDIR: "a part of the path is not a directory",
  EACCES: "permission denied", EPERM: "permission denied", EEXIST: "something is already there", ENOSPC: "no space left on the device", EROFS: "read-only file system",
};

/** "cannot write 'build/x.svg': it is a directory, not a file" from Node's "EISDIR: illegal operation on a directory, open 'build/x.svg'". */
function fsMessage(e: NodeJS.ErrnoException): string {
  const words = FS_WORDS[e.code!] ?? e.message;
  if (!e.path) return words;
  const verb = e.syscall === "open" || e.syscall === "read" || e.syscall === "stat" ? "cannot open" : e.syscall === "mkdir" ? "cannot create" : "cannot write";
  return `${verb} '${e.path}': ${words}`;
}
