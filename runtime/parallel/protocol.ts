// Data-parallel replicas, the wire protocol: the messages a coordinator and its replicas exchange, and the
// transport they travel over. Nothing here knows about worker_threads or Web Workers (transport.ts adapts those),
// so replicas in separate processes need only a new ReplicaTransport and a gradient exchange that is not shared.

import type { Manifest } from "../manifest.js";
import type { DType } from "../dtype.js";

/** A tensor as plain data, so it survives structured cloning (a Tensor's class does not). */
export interface WireTensor {
  dtype: DType;
  shape: number[];
  data: ArrayLike<number> & { length: number };
}

export interface InitMessage {
  kind: "init";
  rank: number;
  replicas: number;
  manifest: Manifest;
  wasm: Uint8Array;
  /** Load seed: replica 0's, or a derived one (distinct dropout masks); params come from replica 0 anyway. */
  seed: number;
  train: string;
  /** Replicas' gradient slots then the reduced vector: (replicas + 1) * total f32 (allreduce.ts). */
  exchange: SharedArrayBuffer;
  /**
   * The buffer of the all_reduce host steps (sync_batch_norm) and of the gradient buckets' counters (collective.ts);
   * `overlap`: grad reduces the buckets as backward finishes them, and the separate reduce round is skipped.
   */
  collective?: { buffer: SharedArrayBuffer; timeoutMs: number; overlap: boolean };
}

/** Coordinator -> replica. Every message but init carries an id that the reply repeats. */
export type ToReplica =
  | InitMessage
  | { kind: "params"; id: number; values: Record<string, WireTensor> }
  | { kind: "grad"; id: number; inputs: Record<string, WireTensor>; checkNumerics: boolean }
  | { kind: "reduce"; id: number }
  | { kind: "apply"; id: number }
  | { kind: "abort"; id: number }
  | { kind: "read"; id: number; names: string[] };

/** What went wrong on a replica, as a KilnError's fields. */
export interface WireError {
  message: string;
  code?: string;
  fn?: string;
  tensor?: string;
  /**
   * The replica stopped only because replica `stoppedBy` failed (an all_reduce saw the abort flag), or -1: its
   * all_reduce timed out waiting for a replica that never came (collective.ts).
   */
  stoppedBy?: number;
}

/** Replica -> coordinator. */
export type FromReplica =
  | { kind: "ready"; id: 0 }
  | { kind: "done"; id: number; loss?: number; applied?: boolean; values?: Record<string, WireTensor> }
  | { kind: "failed"; id: number; error: WireError };

/** One replica's end of a channel: in order, reliable, and it tells when the other end is gone. */
export interface ReplicaTransport {
  post(message: ToReplica): void;
  /** Called for every message; `failure` once if the replica dies (an uncaught error, an exit). */
  listen(message: (m: FromReplica) => void, failure: (reason: string) => void): void;
  close(): void;
}
