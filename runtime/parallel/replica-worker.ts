// Data-parallel replicas, the worker entry point (Node worker_threads or a module Web Worker): waits for init,
// loads its own module, then answers protocol messages one at a time with ReplicaCore. An error the core does not
// catch ends the worker, and the coordinator's transport reports that as the replica's failure.

import { isNode } from "../io.js";
import { ReplicaCore, wireError } from "./replica.js";
import type { FromReplica, ToReplica } from "./protocol.js";

interface Port {
  post(m: FromReplica): void;
  onMessage(f: (m: ToReplica) => void): void;
}

async function port(): Promise<Port> {
  if (isNode()) {
    const wt = (await import(/* @vite-ignore */ "node:worker_threads" as string)) as typeof import("node:worker_threads");
    const p = wt.parentPort!;
    return { post: (m) => p.postMessage(m), onMessage: (f) => p.on("message", f) };
  }
  const self = globalThis as unknown as { postMessage(m: unknown): void; onmessage: ((e: { data: ToReplica }) => void) | null };
  return { post: (m) => self.postMessage(m), onMessage: (f) => (self.onmessage = (e) => f(e.data)) };
}

const p = await port();
let core: ReplicaCore | undefined;
// Messages that arrive while the module loads wait their turn, so replies keep the order of requests.
let queue: Promise<void> = Promise.resolve();
p.onMessage((m) => {
  queue = queue.then(async () => {
    if (m.kind === "init") {
      try {
        core = await ReplicaCore.load(m);
        p.post({ kind: "ready", id: 0 });
      } catch (e) {
        p.post({ kind: "failed", id: 0, error: wireError(e) });
      }
      return;
    }
    if (!core) {
      p.post({ kind: "failed", id: m.id, error: { message: "the replica was not initialised" } });
      return;
    }
    p.post(core.handle(m));
  });
});
