// A dependency-free static file server for the browser demo (and the end-to-end test): serves the repository
// root on 127.0.0.1 with the MIME types ES modules need. `node dsl-examples/browser/serve.mjs [port]`.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json", ".wasm": "application/wasm", ".wgsl": "text/plain; charset=utf-8", ".css": "text/css",
  ".kiln": "text/plain; charset=utf-8", ".ts": "text/plain; charset=utf-8",
};

/** Serves `root`; `mounts` maps URL prefixes ("/build/mlp/") to other folders. Resolves to { url, close }. */
export function serve({ root, mounts = {}, port = 0, host = "127.0.0.1" }) {
  const bases = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const [prefix, dir] = bases.find(([p]) => path.startsWith(p)) ?? ["/", root];
    const base = resolve(dir);
    let file = resolve(join(base, normalize(path.slice(prefix.length))));
    if (file !== base && !file.startsWith(base + sep)) return void res.writeHead(403).end("forbidden");
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => ok({ url: `http://${host}:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) }));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
  const { url } = await serve({ root, port: Number(process.argv[2] ?? 8080) });
  console.log(`serving ${root} at ${url}\nopen ${url}dsl-examples/browser/ (compile first: npx kiln compile dsl-examples/mlp.kiln --target all --out build/mlp)`);
  console.log(`the tutorial's app builds with Vite instead: docs/tutorial.md`);
}
