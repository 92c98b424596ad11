/** The sandbox's public surface: the runner service, its config, the policy types and the errors. */
export { SandboxRunner, type SandboxResult, type SandboxEvent, type SandboxStatus, type RunOptions, type SandboxLogger, type SandboxRunnerInit } from './runner.js'
export { resolveSandboxConfig, defaultSandboxConfig, parseByteSize, SandboxConfigSchema, DEFAULT_SOCKET_PATH, DEFAULT_IMAGE_RECORD, type SandboxConfig, type SandboxConfigInput } from './config.js'
export { buildCreateOptions, resolveResources, checkJob, type SandboxJob, type ResourceRequest, type ResolvedResources, type GpuRequirement } from './policy.js'
export { buildSeccompProfile } from './seccomp.js'
export { readImageRecord, type ImageRecord } from './engine.js'
export * from './errors.js'
