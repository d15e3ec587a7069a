// Data-parallel replicas, the worker transport: a ReplicaTransport over a Node worker_threads Worker or a module
// Web Worker running replica-worker.js. An uncaught error or an exit of the worker is reported once as a failure,
// so a coordinator waiting on a dead replica gets an error instead of waiting forever.

import { isNode } from "../io.js";
import type { FromReplica, ReplicaTransport, ToReplica } from "./protocol.js";

/**
 * replica-worker.js beside this file (the compiled runtime: dist/runtime/parallel or a module's kiln-runtime/). Run
 * from the TypeScript sources (tests), workers still need JavaScript: the build's copy in dist/.
 */
export function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith(".ts") ? new URL("../../dist/runtime/parallel/replica-worker.js", here) : new URL("./replica-worker.js", here);
}

interface NodeWorker {
  postMessage(m: unknown): void;
  on(ev: "message" | "error" | "exit", f: (x: unknown) => void): void;
  unref(): void;
  terminate(): Promise<number>;
}

interface WebWorker {
  postMessage(m: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string }) => void) | null;
  terminate(): void;
}

const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

export async function spawnWorkerTransport(url: URL): Promise<ReplicaTransport> {
  if (isNode()) {
    const wt = (await nodeImport("node:worker_threads")) as { Worker: new (u: URL) => NodeWorker };
    const w = new wt.Worker(url);
    // A trainer never disposed must not keep the process alive.
    w.unref();
    let closed = false;
    return {
      post: (m: ToReplica) => w.postMessage(m),
      listen(message: (m: FromReplica) => void, failure: (reason: string) => void) {
        let failed = false;
        const fail = (why: string) => {
          if (failed || closed) return;
          failed = true;
          failure(why);
        };
        w.on("message", (m) => message(m as FromReplica));
        w.on("error", (e) => fail(`its worker threw ${(e as Error).message ?? String(e)}`));
        w.on("exit", (code) => fail(`its worker exited (code ${String(code)})`));
      },
      close() {
        closed = true;
        void w.terminate();
      },
    };
  }
  const w = new (globalThis as unknown as { Worker: new (u: URL, o: { type: "module" }) => WebWorker }).Worker(url, { type: "module" });
  let closed = false;
  return {
    post: (m: ToReplica) => w.postMessage(m),
    listen(message: (m: FromReplica) => void, failure: (reason: string) => void) {
      w.onmessage = (e) => message(e.data as FromReplica);
      w.onerror = (e) => {
        if (!closed) failure(`its worker threw ${e.message ?? "an error"}`);
      };
    },
    close() {
      closed = true;
      w.terminate();
    },
  };
}
