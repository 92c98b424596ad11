/**
 * The containment policy as pure functions: a job plus the node's sandbox config in, the engine's
 * container-create request out. No I/O here, so every rule is unit-testable.
 */
import { isAbsolute } from 'node:path'
import type Dockerode from 'dockerode'
import type { SandboxConfig } from './config.js'
import { GpuUnavailableError, SandboxJobError } from './errors.js'
import { seccompSecurityOpt, type SeccompProfile, buildSeccompProfile } from './seccomp.js'

export type GpuRequirement = 'required' | 'optional' | 'none'

/** What a job asks for (from its manifest); every value is clamped by the node's config. */
export interface ResourceRequest {
  memoryBytes?: number
  cpus?: number
  timeoutMs?: number
  gpu?: GpuRequirement
  /** lower than the node's output cap, never higher */
  outputBytes?: number
}

export interface SandboxJob {
  /** caller's id for logs and labels (execution/task/attempt); [A-Za-z0-9_.:-], ≤ 128 chars */
  id: string
  /** host directory with the task code; mounted read-only at /task; must be readable by uid 65534 */
  taskDir: string
  /** host directory with inputs, mounted read-only at /in (optional) */
  inputDir?: string
  /** argv inside the container, e.g. ['python3', '/task/src/main.py'] */
  command: string[]
  /** the only randomness the task gets, as BITFLOW_SEED (derived from the execution) */
  seed: string
  resources?: ResourceRequest
  /** host directory to copy /out into after the run (created if missing, must be empty); omit to only list outputs */
  outputDir?: string
}

export interface ResolvedResources {
  memoryBytes: number
  nanoCpus: number
  pidsLimit: number
  timeoutMs: number
  tmpBytes: number
  shmBytes: number
  outputBytes: number
  gpu: { driver: string, count?: number, deviceIds?: string[] } | undefined
}

/** Path of the task's fixed, identity-free environment. */
export const TASK_HOSTNAME = 'task'
export const TASK_USER = '65534:65534'
export const TASK_UID = 65534
export const LABEL_ROLE = 'org.bitflow.sandbox'
export const LABEL_OWNER = 'org.bitflow.sandbox.owner'
export const LABEL_RUN = 'org.bitflow.sandbox.run'
export const LABEL_JOB = 'org.bitflow.sandbox.job'

const JOB_ID = /^[A-Za-z0-9_.:-]{1,128}$/
const SEED = /^[A-Za-z0-9_.:+/=-]{1,256}$/

/** Checks the job's shape; throws SandboxJobError naming the field. */
export function checkJob (job: SandboxJob): void {
  if (typeof job.id !== 'string' || !JOB_ID.test(job.id)) throw new SandboxJobError(`invalid job id ${JSON.stringify(job.id)}: expected 1-128 characters of [A-Za-z0-9_.:-]`)
  if (typeof job.taskDir !== 'string' || !isAbsolute(job.taskDir)) throw new SandboxJobError(`job ${job.id}: taskDir must be an absolute host path, got ${JSON.stringify(job.taskDir)}`)
  if (job.inputDir !== undefined && (typeof job.inputDir !== 'string' || !isAbsolute(job.inputDir))) throw new SandboxJobError(`job ${job.id}: inputDir must be an absolute host path, got ${JSON.stringify(job.inputDir)}`)
  if (job.outputDir !== undefined && (typeof job.outputDir !== 'string' || !isAbsolute(job.outputDir))) throw new SandboxJobError(`job ${job.id}: outputDir must be an absolute host path, got ${JSON.stringify(job.outputDir)}`)
  if (!Array.isArray(job.command) || job.command.length === 0 || job.command.some(a => typeof a !== 'string' || a.includes('\0'))) {
    throw new SandboxJobError(`job ${job.id}: command must be a non-empty list of strings (argv), e.g. ["python3", "/task/src/main.py"]`)
  }
  if (typeof job.seed !== 'string' || !SEED.test(job.seed)) throw new SandboxJobError(`job ${job.id}: seed must be 1-256 characters of [A-Za-z0-9_.:+/=-]`)
}

function positive (value: number | undefined, field: string, jobId: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new SandboxJobError(`job ${jobId}: resources.${field} must be a positive number, got ${String(value)}`)
  return value
}

/**
 * The job's requests clamped by the node's ceilings. A `gpu: required` job on a node without GPUs is
 * refused (GpuUnavailableError); `optional` gets the GPUs when the node has them.
 */
export function resolveResources (job: Pick<SandboxJob, 'id' | 'resources'>, config: SandboxConfig): ResolvedResources {
  const r = job.resources ?? {}
  const memory = positive(r.memoryBytes, 'memoryBytes', job.id)
  const cpus = positive(r.cpus, 'cpus', job.id)
  const timeout = positive(r.timeoutMs, 'timeoutMs', job.id)
  const output = positive(r.outputBytes, 'outputBytes', job.id)
  const gpuReq = r.gpu ?? 'none'
  if (!['required', 'optional', 'none'].includes(gpuReq)) throw new SandboxJobError(`job ${job.id}: resources.gpu must be required, optional or none, got ${JSON.stringify(gpuReq)}`)
  const nodeHasGpu = config.gpus.count > 0 || (config.gpus.deviceIds?.length ?? 0) > 0
  if (gpuReq === 'required' && !nodeHasGpu) throw new GpuUnavailableError(`job ${job.id}`)
  const memoryBytes = Math.floor(Math.min(memory ?? config.memory.defaultBytes, config.memory.maxBytes))
  // a task smaller than its own /tmp plus a few MiB for python cannot start; 16 MiB floor
  const floorMemory = 16 * 1024 * 1024
  const cpusGranted = Math.min(cpus ?? config.cpus.default, config.cpus.max)
  return {
    memoryBytes: Math.max(memoryBytes, floorMemory),
    nanoCpus: Math.max(Math.round(cpusGranted * 1e9), 10_000_000),
    pidsLimit: Math.min(config.pidsLimit, 64),
    timeoutMs: Math.floor(Math.min(timeout ?? config.timeout.defaultMs, config.timeout.maxMs)),
    tmpBytes: config.tmpBytes,
    shmBytes: config.shmBytes,
    outputBytes: Math.floor(Math.min(output ?? config.outputBytes, config.outputBytes)),
    gpu: gpuReq !== 'none' && nodeHasGpu
      ? (config.gpus.deviceIds !== undefined && config.gpus.deviceIds.length > 0
          ? { driver: config.gpus.driver, deviceIds: [...config.gpus.deviceIds] }
          : { driver: config.gpus.driver, count: config.gpus.count })
      : undefined
  }
}

/** Host-side pieces the runner prepares for one run. */
export interface RunContext {
  /** runtime image id (sha256:...) */
  image: string
  /** container name */
  name: string
  owner: string
  runId: string
  /** host directory (a size-limited tmpfs) bind-mounted read-write at /out */
  outMount: string
  /** host files bind-mounted read-only over the engine's /etc/hosts, /etc/hostname, /etc/resolv.conf */
  etcFiles?: { hosts: string, hostname: string, resolvConf: string }
  seccomp?: SeccompProfile
}

/**
 * The full create request for one job. Everything a task could use to identify the node or reach
 * out of the container is fixed or absent here.
 */
export function buildCreateOptions (job: SandboxJob, config: SandboxConfig, ctx: RunContext): Dockerode.ContainerCreateOptions {
  checkJob(job)
  const res = resolveResources(job, config)
  const mounts: Dockerode.MountConfig = [
    { Type: 'bind', Source: job.taskDir, Target: '/task', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } },
    { Type: 'bind', Source: ctx.outMount, Target: '/out', ReadOnly: false, BindOptions: { Propagation: 'rprivate' } }
  ]
  if (job.inputDir !== undefined) mounts.push({ Type: 'bind', Source: job.inputDir, Target: '/in', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } })
  if (ctx.etcFiles !== undefined) {
    mounts.push(
      { Type: 'bind', Source: ctx.etcFiles.hosts, Target: '/etc/hosts', ReadOnly: true },
      { Type: 'bind', Source: ctx.etcFiles.hostname, Target: '/etc/hostname', ReadOnly: true },
      { Type: 'bind', Source: ctx.etcFiles.resolvConf, Target: '/etc/resolv.conf', ReadOnly: true }
    )
  }
  const fileLimit = Math.max(res.tmpBytes, res.outputBytes)
  const hostConfig: Dockerode.HostConfig & { CgroupnsMode: 'private' } = {
    NetworkMode: 'none',
    // the task sees its own cgroup as / instead of /docker/<container id>
    CgroupnsMode: 'private',
    IpcMode: 'none',
    PidMode: '',
    UTSMode: '',
    Privileged: false,
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    CapAdd: [],
    SecurityOpt: ['no-new-privileges:true', seccompSecurityOpt(ctx.seccomp ?? buildSeccompProfile())],
    PidsLimit: res.pidsLimit,
    Memory: res.memoryBytes,
    MemorySwap: res.memoryBytes,
    MemoryReservation: 0,
    OomKillDisable: false,
    OomScoreAdj: 500,
    NanoCpus: res.nanoCpus,
    Tmpfs: {
      '/tmp': `rw,noexec,nosuid,nodev,size=${res.tmpBytes},nr_inodes=4096,mode=1777`,
      // IPC mode none gives the task a private IPC namespace without /dev/shm; multiprocessing needs one
      ...(res.shmBytes > 0 ? { '/dev/shm': `rw,noexec,nosuid,nodev,size=${res.shmBytes},nr_inodes=1024,mode=1777` } : {})
    },
    Mounts: mounts,
    Ulimits: [
      { Name: 'nofile', Soft: 1024, Hard: 1024 },
      { Name: 'core', Soft: 0, Hard: 0 },
      // a write beyond the largest writable file system fails with EFBIG (python ignores SIGXFSZ)
      { Name: 'fsize', Soft: fileLimit, Hard: fileLimit }
    ],
    LogConfig: { Type: 'none', Config: {} },
    AutoRemove: false,
    RestartPolicy: { Name: 'no' },
    Init: false,
    PublishAllPorts: false,
    Dns: [],
    DnsSearch: [],
    DnsOptions: [],
    ExtraHosts: [],
    ...(res.gpu !== undefined
      ? {
          DeviceRequests: [{
            Driver: res.gpu.driver,
            ...(res.gpu.deviceIds !== undefined ? { DeviceIDs: res.gpu.deviceIds } : { Count: res.gpu.count }),
            Capabilities: [['gpu']],
            Options: {}
          }]
        }
      : {})
  }
  return {
    name: ctx.name,
    Image: ctx.image,
    Cmd: [...job.command],
    Entrypoint: [],
    WorkingDir: '/task',
    User: TASK_USER,
    Hostname: TASK_HOSTNAME,
    Domainname: '',
    Env: ['PYTHONHASHSEED=0', `BITFLOW_SEED=${job.seed}`],
    Labels: { [LABEL_ROLE]: 'task', [LABEL_OWNER]: ctx.owner, [LABEL_RUN]: ctx.runId, [LABEL_JOB]: job.id },
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: true,
    StopSignal: 'SIGKILL',
    HostConfig: hostConfig
  }
}
