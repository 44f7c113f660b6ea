/** Kernel tables moved to the runtime seam (src/runtime/kernels.ts); kept for existing imports. */
export * from '../runtime/kernels.js';
