/**
 * SandboxRunner: runs jobs in bitflow's Docker engine under the policy of policy.ts, at most
 * `config.slots` at a time. A service with start()/stop(); every run is abortable.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import type Docker from 'dockerode'
import { resolveSandboxConfig, type SandboxConfig, type SandboxConfigInput } from './config.js'
import { anySignal, connectEngine, resolveImage, statusOf, type EngineInfo } from './engine.js'
import { SandboxAbortedError, SandboxEngineError, SandboxError, SandboxJobError, SandboxNotRunningError, SandboxOutputError } from './errors.js'
import { collectOutputs, mountOutputTmpfs, removeRunDir, writeEtcFiles, type OutputFile, type SkippedOutput } from './outputs.js'
import { buildCreateOptions, checkJob, LABEL_OWNER, LABEL_ROLE, resolveResources, TASK_HOSTNAME, type ResolvedResources, type SandboxJob } from './policy.js'
import { buildSeccompProfile, type SeccompProfile } from './seccomp.js'
import { Semaphore } from './semaphore.js'
import { CappedBuffer, StreamDemuxer } from './streams.js'

export type SandboxEvent =
  | { type: 'started', containerId: string }
  | { type: 'timeout', timeoutMs: number }
  | { type: 'oom', memoryBytes: number }
  | { type: 'stdout-cap', capBytes: number }
  | { type: 'stderr-cap', capBytes: number }
  | { type: 'output-full', capBytes: number }
  | { type: 'output-skipped', path: string, reason: SkippedOutput['reason'] }

export type SandboxStatus = 'succeeded' | 'failed' | 'timeout' | 'oom'

export interface SandboxResult {
  jobId: string
  runId: string
  /** succeeded: exit 0; failed: other exit; timeout: killed at the wall-clock limit; oom: memory limit hit */
  status: SandboxStatus
  /** the task's exit code (137 when killed) */
  exitCode: number
  timedOut: boolean
  oomKilled: boolean
  /** from start to exit, milliseconds */
  durationMs: number
  stdout: Buffer
  stderr: Buffer
  /** bytes the task wrote to each stream, kept or not */
  stdoutBytes: number
  stderrBytes: number
  stdoutTruncated: boolean
  stderrTruncated: boolean
  /** files copied out of /out (paths relative to /out) */
  outputs: OutputFile[]
  skippedOutputs: SkippedOutput[]
  outputBytes: number
  /** the task filled /out: some of its writes failed with ENOSPC */
  outputFull: boolean
  /** containment events, in order */
  events: SandboxEvent[]
  resources: ResolvedResources
}

export interface RunOptions {
  signal?: AbortSignal
  /** the task's stdout as it arrives (within the cap) */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /** containment events as they happen */
  onEvent?: (event: SandboxEvent) => void
}

/** pino-compatible subset */
export interface SandboxLogger {
  debug: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

export interface SandboxRunnerInit {
  config?: SandboxConfigInput | SandboxConfig
  logger?: SandboxLogger
}

const silent: SandboxLogger = { debug: () => {}, warn: () => {} }
/** after SIGKILL the engine must report the exit within this long */
const KILL_GRACE_MS = 30_000
/** after the exit, the attach stream must drain within this long */
const DRAIN_MS = 5_000

export class SandboxRunner {
  readonly config: SandboxConfig
  private readonly logger: SandboxLogger
  private readonly slots: Semaphore
  private readonly seccomp: SeccompProfile
  private docker: Docker | undefined
  private imageId: string | undefined
  private etcFiles: { hosts: string, hostname: string, resolvConf: string } | undefined
  private engineInfo: EngineInfo | undefined
  private readonly active = new Map<string, { abort: AbortController, done: Promise<unknown> }>()
  private state: 'stopped' | 'starting' | 'started' | 'stopping' = 'stopped'

  constructor (init: SandboxRunnerInit = {}) {
    this.config = resolveSandboxConfig(init.config)
    this.logger = init.logger ?? silent
    this.slots = new Semaphore(this.config.slots)
    this.seccomp = buildSeccompProfile()
  }

  /** The runtime image id in use (after start). */
  get image (): string | undefined { return this.imageId }
  get engine (): EngineInfo | undefined { return this.engineInfo }
  /** runs accepted and not finished (running or waiting for a slot) */
  get running (): number { return this.active.size }
  /** slots in use and runs waiting for one, for metrics and heartbeats (free capacity) */
  get load (): { slots: number, inUse: number, waiting: number } { return { slots: this.slots.size, inUse: this.slots.inUse, waiting: this.slots.waiting } }
  get ownerDir (): string { return join(this.config.workDir, this.config.owner) }

  /**
   * Connects to the engine (EngineUnavailableError naming `npm run setup` if none), checks the image,
   * and removes containers and run directories this owner left behind (a crash, a kill -9).
   */
  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.state !== 'stopped') return
    this.state = 'starting'
    try {
      const { docker, info } = await connectEngine(this.config.socketPath, options)
      const image = await resolveImage(docker, this.config, options.signal)
      await mkdir(this.ownerDir, { recursive: true, mode: 0o700 })
      await this.removeStale(docker, options.signal)
      this.etcFiles = await writeEtcFiles(join(this.ownerDir, 'etc'), TASK_HOSTNAME)
      this.docker = docker
      this.imageId = image.id
      this.engineInfo = info
      this.state = 'started'
      this.logger.debug({ image: image.id, engine: info.version, owner: this.config.owner, slots: this.config.slots }, 'sandbox runner started')
    } catch (err) {
      this.state = 'stopped'
      throw err
    }
  }

  /** Kills and removes every running task, then stops. */
  async stop (): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    this.state = 'stopping'
    for (const run of this.active.values()) run.abort.abort(new SandboxError('ERR_SANDBOX_STOPPING', 'the sandbox runner is stopping'))
    await Promise.allSettled([...this.active.values()].map(async r => await r.done))
    // nothing of this owner runs any more: drop its run dirs (unmounting any left) and /etc files
    await removeRunDir(this.ownerDir).catch((err: unknown) => { this.logger.warn({ err, dir: this.ownerDir }, 'could not remove the runner\'s work dir') })
    this.docker = undefined
    this.state = 'stopped'
  }

  private async removeStale (docker: Docker, signal?: AbortSignal): Promise<void> {
    const stale = await docker.listContainers({ all: true, filters: { label: [`${LABEL_ROLE}=task`, `${LABEL_OWNER}=${this.config.owner}`] }, abortSignal: signal })
    for (const c of stale) {
      this.logger.warn({ container: c.Id, state: c.State }, 'removing a stale sandbox container')
      await docker.getContainer(c.Id).remove({ force: true, v: true }).catch((err: unknown) => {
        if (statusOf(err) !== 404) throw new SandboxEngineError(`remove stale container ${c.Id}`, err)
      })
    }
    for (const name of await readdir(this.ownerDir)) {
      if (name === 'etc') continue
      await removeRunDir(join(this.ownerDir, name))
    }
  }

  /**
   * Runs one job to completion and returns what happened. Containment outcomes (timeout, OOM, output
   * caps) are results, not errors; errors are for jobs that cannot run (SandboxJobError,
   * GpuUnavailableError), engine failures, and aborts (SandboxAbortedError).
   */
  async run (job: SandboxJob, options: RunOptions = {}): Promise<SandboxResult> {
    if (this.state !== 'started') throw new SandboxNotRunningError()
    checkJob(job)
    const resources = resolveResources(job, this.config) // refuses gpu: required without GPUs
    await checkReadableDir(job.taskDir, 'taskDir', job.id)
    if (job.inputDir !== undefined) await checkReadableDir(job.inputDir, 'inputDir', job.id)
    options.signal?.throwIfAborted()

    const runId = randomBytes(8).toString('hex')
    const abort = new AbortController()
    const signal = anySignal(options.signal, abort.signal)
    const done = this.runInSlot(job, runId, resources, options, signal)
    this.active.set(runId, { abort, done })
    try {
      return await done
    } finally {
      this.active.delete(runId)
    }
  }

  private async runInSlot (job: SandboxJob, runId: string, resources: ResolvedResources, options: RunOptions, signal: AbortSignal): Promise<SandboxResult> {
    let release: () => void
    try {
      release = await this.slots.acquire(signal)
    } catch (err) {
      throw new SandboxAbortedError(signal.reason ?? err)
    }
    try {
      return await this.execute(job, runId, resources, options, signal)
    } finally {
      release()
    }
  }

  private async execute (job: SandboxJob, runId: string, resources: ResolvedResources, options: RunOptions, signal: AbortSignal): Promise<SandboxResult> {
    const docker = this.docker
    if (docker === undefined || this.imageId === undefined) throw new SandboxNotRunningError()
    const events: SandboxEvent[] = []
    const emit = (e: SandboxEvent): void => {
      events.push(e)
      try { options.onEvent?.(e) } catch { /* listener failures do not affect the run */ }
    }
    const runDir = join(this.ownerDir, runId)
    const outMount = join(runDir, 'out')
    let container: Docker.Container | undefined
    let removed = false
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    try {
      await mkdir(runDir, { mode: 0o700 })
      await mountOutputTmpfs(outMount, resources.outputBytes, this.config.outputFiles, signal)
      const create = buildCreateOptions(job, this.config, {
        image: this.imageId,
        name: `bitflow-${this.config.owner}-${runId}`,
        owner: this.config.owner,
        runId,
        outMount,
        seccomp: this.seccomp,
        ...(this.etcFiles !== undefined ? { etcFiles: this.etcFiles } : {})
      })
      signal.throwIfAborted()
      container = await docker.createContainer({ ...create, abortSignal: signal }).catch((err: unknown) => {
        signal.throwIfAborted()
        throw new SandboxEngineError('create the task container', err)
      })
      const c = container

      const stdout = new CappedBuffer(this.config.stdoutBytes, options.onStdout)
      const stderr = new CappedBuffer(this.config.stderrBytes, options.onStderr)
      const demux = new StreamDemuxer({ stdout, stderr })
      const stream = await c.attach({ stream: true, stdout: true, stderr: true, logs: false }).catch((err: unknown) => {
        throw new SandboxEngineError('attach to the task container', err)
      }) as unknown as Duplex
      const drained = new Promise<void>(resolve => {
        stream.on('data', (chunk: Buffer) => { demux.write(chunk) })
        stream.once('end', resolve)
        stream.once('close', resolve)
        stream.once('error', () => { resolve() })
      })

      let timedOut = false
      let killed: Promise<void> | undefined
      const kill = (): void => {
        killed ??= c.kill({ signal: 'SIGKILL' }).then(() => {}, (err: unknown) => {
          // 409/304: already stopped
          if (statusOf(err) !== 409 && statusOf(err) !== 304 && statusOf(err) !== 404) this.logger.warn({ err, runId }, 'kill failed')
        })
      }
      onAbort = kill
      signal.addEventListener('abort', onAbort, { once: true })

      await c.start().catch((err: unknown) => { throw new SandboxEngineError('start the task container', err) })
      const started = performance.now()
      emit({ type: 'started', containerId: c.id })
      timer = setTimeout(() => { timedOut = true; kill() }, resources.timeoutMs)
      if (signal.aborted) kill()

      const waited = c.wait() as Promise<{ StatusCode: number }>
      const exit = await raceDeadline(waited, resources.timeoutMs + KILL_GRACE_MS)
        .catch((err: unknown) => { throw new SandboxEngineError('wait for the task container', err) })
      const durationMs = Math.round(performance.now() - started)
      clearTimeout(timer)
      await Promise.race([drained, new Promise(resolve => setTimeout(resolve, DRAIN_MS).unref())])
      stream.destroy()

      const info = await c.inspect().catch((err: unknown) => { throw new SandboxEngineError('inspect the task container', err) })
      await c.remove({ force: true, v: true }).catch((err: unknown) => {
        if (statusOf(err) !== 404) throw new SandboxEngineError('remove the task container', err)
      })
      removed = true
      if (signal.aborted) throw new SandboxAbortedError(signal.reason)

      const oomKilled = info.State.OOMKilled === true
      const exitCode = typeof info.State.ExitCode === 'number' ? info.State.ExitCode : exit.StatusCode
      if (timedOut) emit({ type: 'timeout', timeoutMs: resources.timeoutMs })
      if (oomKilled) emit({ type: 'oom', memoryBytes: resources.memoryBytes })
      if (stdout.truncated) emit({ type: 'stdout-cap', capBytes: stdout.cap })
      if (stderr.truncated) emit({ type: 'stderr-cap', capBytes: stderr.cap })

      const collected = await collectOutputs(outMount, job.outputDir, { maxBytes: resources.outputBytes, maxFiles: this.config.outputFiles }).catch((err: unknown) => {
        throw new SandboxOutputError(`job ${job.id}: cannot copy the task's outputs to ${job.outputDir ?? '(listing only)'}: ${(err as Error).message}; outputDir must be absent or empty`, err)
      })
      if (collected.full) emit({ type: 'output-full', capBytes: resources.outputBytes })
      for (const s of collected.skipped) emit({ type: 'output-skipped', path: s.path, reason: s.reason })

      const status: SandboxStatus = timedOut ? 'timeout' : oomKilled ? 'oom' : exitCode === 0 ? 'succeeded' : 'failed'
      this.logger.debug({ jobId: job.id, runId, status, exitCode, durationMs }, 'sandbox run finished')
      return {
        jobId: job.id,
        runId,
        status,
        exitCode,
        timedOut,
        oomKilled,
        durationMs,
        stdout: stdout.bytes,
        stderr: stderr.bytes,
        stdoutBytes: stdout.total,
        stderrBytes: stderr.total,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
        outputs: collected.files,
        skippedOutputs: collected.skipped,
        outputBytes: collected.totalBytes,
        outputFull: collected.full,
        events,
        resources
      }
    } catch (err) {
      if (signal.aborted && !(err instanceof SandboxAbortedError)) throw new SandboxAbortedError(signal.reason)
      throw err
    } finally {
      clearTimeout(timer)
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
      if (container !== undefined && !removed) {
        await container.remove({ force: true, v: true }).catch((err: unknown) => {
          if (statusOf(err) !== 404) this.logger.warn({ err, runId }, 'could not remove a task container; it is removed at the next start')
        })
      }
      await removeRunDir(runDir).catch((err: unknown) => { this.logger.warn({ err, runDir }, 'could not remove a run directory; it is removed at the next start') })
    }
  }
}

/** `promise`, or a rejection when it is still pending after `ms` (the engine lost the container). */
async function raceDeadline<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`no exit reported within ${ms} ms`)) }, ms)
    timer.unref()
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

async function checkReadableDir (dir: string, field: string, jobId: string): Promise<void> {
  let st
  try {
    st = await stat(dir)
  } catch {
    throw new SandboxJobError(`job ${jobId}: ${field} ${dir} does not exist`)
  }
  if (!st.isDirectory()) throw new SandboxJobError(`job ${jobId}: ${field} ${dir} is not a directory`)
  if ((st.mode & 0o005) !== 0o005) throw new SandboxJobError(`job ${jobId}: ${field} ${dir} must be readable by the task's uid 65534 (chmod o+rx; mode is ${(st.mode & 0o777).toString(8)})`)
}
