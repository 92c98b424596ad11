/**
 * Errors of the sandbox. Same shape as the daemon's BitflowError (a stable `code` for tools, a message
 * that says what to do), kept local so that `sandbox/` does not import from `daemon/` (the dependency
 * runs daemon → sandbox). Callers can branch on `code`.
 */
export class SandboxError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** No Docker engine answers on the configured socket. */
export class EngineUnavailableError extends SandboxError {
  constructor (socketPath: string, cause?: unknown) {
    const why = cause instanceof Error ? `: ${cause.message}` : ''
    super('ERR_SANDBOX_ENGINE_UNAVAILABLE', `no Docker engine answers on ${socketPath}${why}; run: npm run setup (it installs docker.io and starts bitflow's dockerd)`, { cause })
  }
}

/** The runtime image is not built, or its recorded id no longer exists in the engine. */
export class ImageUnavailableError extends SandboxError {
  constructor (message: string, cause?: unknown) {
    super('ERR_SANDBOX_IMAGE_UNAVAILABLE', `${message}; run: npm run setup (it builds bitflow/taskpack-python)`, { cause })
  }
}

/** The sandbox configuration (node config) is invalid. */
export class SandboxConfigError extends SandboxError {
  constructor (message: string) { super('ERR_SANDBOX_CONFIG', message) }
}

/** The job cannot run under the policy (bad task dir, seed, command, resources). */
export class SandboxJobError extends SandboxError {
  constructor (message: string) { super('ERR_SANDBOX_JOB', message) }
}

/** The job needs a GPU and this node has none configured. */
export class GpuUnavailableError extends SandboxError {
  constructor (what: string) {
    super('ERR_SANDBOX_GPU_UNAVAILABLE', `${what} requires a GPU (gpu: required) but this node has no NVIDIA GPU configured (sandbox.gpus.count is 0); run it on a GPU node or set gpu: optional in the manifest`)
  }
}

/** run() on a runner that is not started (or is stopping). */
export class SandboxNotRunningError extends SandboxError {
  constructor () { super('ERR_SANDBOX_NOT_RUNNING', 'the sandbox runner is not started; call start() first') }
}

/** The caller aborted the run; the container was killed and removed. */
export class SandboxAbortedError extends SandboxError {
  constructor (reason?: unknown) {
    super('ERR_SANDBOX_ABORTED', `sandbox run aborted${reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : ''}`, { cause: reason })
  }
}

/** The engine failed while creating, starting or inspecting a container. */
export class SandboxEngineError extends SandboxError {
  constructor (step: string, cause: unknown) {
    super('ERR_SANDBOX_ENGINE', `Docker engine failed to ${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/** Preparing or collecting the size-limited /out failed (e.g. the runner cannot mount a tmpfs). */
export class SandboxOutputError extends SandboxError {
  constructor (message: string, cause?: unknown) { super('ERR_SANDBOX_OUTPUT', message, { cause }) }
}
