// Golden-file comparison shared by the fixture tests: KILN_UPDATE_FIXTURES=1 (re)writes the file, otherwise a
// missing file or any difference fails.
import { expect } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export const UPDATE = process.env.KILN_UPDATE_FIXTURES === "1";

export function golden(file: string, actual: string): void {
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) throw new Error(`missing golden file ${file}; run with KILN_UPDATE_FIXTURES=1 to create it`);
    writeFileSync(file, actual);
    return;
  }
  expect(actual, `golden ${file} differs (KILN_UPDATE_FIXTURES=1 regenerates it)`).toBe(readFileSync(file, "utf8"));
}
