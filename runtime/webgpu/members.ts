// Where WebGPU module methods appear: the wasm layout (runtime/layout.ts) minus the names KilnGpuModule itself
// uses. Shared by the runtime (which installs methods) and the .d.ts emitter (which types them).

/** Members of KilnGpuModule beyond the wasm module's: functions with these names are reachable through call(). */
export const GPU_MODULE_MEMBERS: readonly string[] = ["backend", "adapter", "sync", "halfStorage"];
