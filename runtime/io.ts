// Reading module files by URL: the filesystem under Node (file: URLs and plain paths), fetch everywhere else.
// Node modules are imported dynamically (never at top level) so this file also loads in a browser.

import { KilnError } from "./errors.js";

export function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions === "object" && !!process.versions?.node;
}

// Hidden from bundlers, which would otherwise try to resolve the Node builtins for a browser build.
const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

/** Resolves a URL or (under Node) a filesystem path; relative URLs resolve against `base` or the page. */
export async function toUrl(spec: string | URL, base?: string | URL): Promise<URL> {
  if (spec instanceof URL) return spec;
  if (base !== undefined) return new URL(spec, base);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:/.test(spec) && !/^[a-zA-Z]:[\\/]/.test(spec)) return new URL(spec);
  if (isNode()) {
    const url = (await nodeImport("node:url")) as typeof import("node:url");
    const path = (await nodeImport("node:path")) as typeof import("node:path");
    return url.pathToFileURL(path.resolve(spec));
  }
  const pageBase = (globalThis as { location?: { href: string } }).location?.href;
  return pageBase ? new URL(spec, pageBase) : new URL(spec);
}

/** The bytes at a URL (file: via fs under Node, anything else via fetch). */
export async function readBytes(spec: string | URL): Promise<Uint8Array> {
  const url = await toUrl(spec);
  try {
    if (url.protocol === "file:" && isNode()) {
      const fs = (await nodeImport("node:fs/promises")) as typeof import("node:fs/promises");
      const nodeUrl = (await nodeImport("node:url")) as typeof import("node:url");
      return new Uint8Array(await fs.readFile(nodeUrl.fileURLToPath(url)));
    }
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new KilnError(`could not read ${url.href}: ${(e as Error).message}`, { code: "load_failed", cause: e });
  }
}

export async function readText(spec: string | URL): Promise<string> {
  return new TextDecoder().decode(await readBytes(spec));
}
