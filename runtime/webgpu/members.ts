// Where WebGPU module methods appear: the wasm layout (runtime/layout.ts) minus the names KilnGpuModule itself
// uses. Shared by the runtime (which installs methods) and the .d.ts emitter (which types them).

/**
 * Members of KilnGpuModule beyond the wasm module's (backend, threads, fallbackReason and sync are shared): functions
 * with these names are reachable through call().
 */
export const GPU_MODULE_MEMBERS: readonly string[] = ["adapter", "halfStorage"];
