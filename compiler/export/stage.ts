// Export, shared: writes an export's files so that nothing partial is left on disk. Everything is written into a
// staging path beside the destination, then renamed into place in one step; a failure removes the staging path.

import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, basename } from "node:path";

/** Writes one file via `PATH.partial-PID` + rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes a folder of files (relative path -> contents) as `dir`: staged beside it, then swapped in, so a reader
 * sees either the old folder or the whole new one. An existing `dir` is replaced.
 */
export async function writeDirAtomic(dir: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const stage = join(dirname(dir), `.${basename(dir)}.partial-${process.pid}`);
  const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`);
  await rm(stage, { recursive: true, force: true });
  try {
    for (const [rel, data] of files) {
      const p = join(stage, rel);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, data);
    }
    let hadOld = true;
    await rename(dir, old).catch(() => (hadOld = false));
    await rename(stage, dir);
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(stage, { recursive: true, force: true });
    throw e;
  }
}
