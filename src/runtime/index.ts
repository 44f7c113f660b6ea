/**
 * The runtime seam: execution-provider choice, session options, device-resident tensors and the kernel
 * tables of every provider. Train, coord-check, sweep and the benches ask it for sessions.
 */
export { EP_CHOICES, PROVIDER_NAME, CUDA_INSTALL_HINT, missingCudaLibraries, softwareVulkanEnv, findWebGpuProblem, webgpuHint } from './providers.js';
export type { Ep, EpChoice } from './providers.js';
export { openSession, sessionOptions, unavailable } from './session.js';
export type { RuntimeSession, SessionRequest } from './session.js';
export { DeviceState } from './device-state.js';
export { checkKernels, checkCudaKernels, checkWebGpuKernels, getKernelTable, formatKernelReport, CUDA_PROVIDER, WEBGPU_PROVIDER } from './kernels.js';
export type { KernelReport, KernelFallback, GpuProvider } from './kernels.js';
