import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { SandboxConfigError } from './errors.js'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** The default Docker socket and image record written by scripts/setup-docker.sh and build-image.sh. */
export const DEFAULT_SOCKET_PATH = '/run/bitflow-docker/docker.sock'
export const DEFAULT_STATE_DIR = '/var/lib/bitflow-sandbox'
export const DEFAULT_IMAGE_RECORD = `${DEFAULT_STATE_DIR}/taskpack-python.json`

/**
 * The node operator's sandbox settings: where the engine is, and the ceilings every job is clamped
 * to. A job's own requests (from its manifest) can only lower these.
 */
export const SandboxConfigSchema = Type.Object({
  socketPath: Type.String({ minLength: 1, description: 'Docker engine socket (bitflow runs its own dockerd)' }),
  imageRecord: Type.String({ minLength: 1, description: 'JSON file naming the runtime image id, written by scripts/build-image.sh' }),
  image: Type.Optional(Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: 'runtime image id; overrides imageRecord' })),
  workDir: Type.String({ minLength: 1, description: 'host directory for per-run mounts (size-limited /out)' }),
  owner: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$', description: 'label value marking this runner\'s containers; runners sharing an engine need distinct owners' }),
  slots: Type.Integer({ minimum: 1, maximum: 256, description: 'tasks run at once (the node\'s capacity)' }),
  memory: Type.Object({
    defaultBytes: Type.Integer({ minimum: 16 * MiB, description: 'memory of a job that asks for none' }),
    maxBytes: Type.Integer({ minimum: 16 * MiB, description: 'most memory one job may get (memory = memory+swap: no swap)' })
  }, { additionalProperties: false }),
  cpus: Type.Object({
    default: Type.Number({ exclusiveMinimum: 0, description: 'CPUs (quota) of a job that asks for none' }),
    max: Type.Number({ exclusiveMinimum: 0, description: 'most CPUs (quota) one job may get' })
  }, { additionalProperties: false }),
  pidsLimit: Type.Integer({ minimum: 8, maximum: 64, description: 'most processes and threads in one task' }),
  tmpBytes: Type.Integer({ minimum: MiB, description: 'size of the task\'s /tmp (tmpfs, counts toward its memory)' }),
  shmBytes: Type.Integer({ minimum: 0, description: 'size of the task\'s private /dev/shm (POSIX semaphores for multiprocessing; 0: none)' }),
  outputBytes: Type.Integer({ minimum: 64 * 1024, description: 'size of the task\'s /out; writes beyond it fail with ENOSPC' }),
  outputFiles: Type.Integer({ minimum: 1, description: 'most files and directories in /out' }),
  stdoutBytes: Type.Integer({ minimum: 1024, description: 'stdout kept per task; the rest is discarded and reported' }),
  stderrBytes: Type.Integer({ minimum: 1024, description: 'stderr kept per task; the rest is discarded and reported' }),
  timeout: Type.Object({
    defaultMs: Type.Integer({ minimum: 100, description: 'wall-clock limit of a job that asks for none' }),
    maxMs: Type.Integer({ minimum: 100, description: 'longest wall-clock limit a job may ask for' })
  }, { additionalProperties: false }),
  gpus: Type.Object({
    count: Type.Integer({ minimum: 0, description: 'NVIDIA GPUs this node offers to tasks (0: none)' }),
    deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'specific GPU ids/UUIDs to expose instead of a count' })),
    driver: Type.String({ minLength: 1, description: 'engine device driver for GPUs' })
  }, { additionalProperties: false })
}, { additionalProperties: false })

export type SandboxConfig = Static<typeof SandboxConfigSchema>

export type SandboxConfigInput = Partial<Omit<SandboxConfig, 'memory' | 'cpus' | 'timeout' | 'gpus'>> & {
  memory?: Partial<SandboxConfig['memory']>
  cpus?: Partial<SandboxConfig['cpus']>
  timeout?: Partial<SandboxConfig['timeout']>
  gpus?: Partial<SandboxConfig['gpus']>
}

export function defaultSandboxConfig (): SandboxConfig {
  return {
    socketPath: DEFAULT_SOCKET_PATH,
    imageRecord: DEFAULT_IMAGE_RECORD,
    workDir: `${DEFAULT_STATE_DIR}/runs`,
    owner: 'default',
    slots: 2,
    memory: { defaultBytes: GiB, maxBytes: GiB },
    cpus: { default: 1, max: 1 },
    pidsLimit: 64,
    tmpBytes: 64 * MiB,
    shmBytes: 16 * MiB,
    outputBytes: 64 * MiB,
    outputFiles: 4096,
    stdoutBytes: MiB,
    stderrBytes: MiB,
    timeout: { defaultMs: 60_000, maxMs: 3_600_000 },
    gpus: { count: 0, driver: 'nvidia' }
  }
}

const validate = new Ajv({ allErrors: false, strict: false }).compile(SandboxConfigSchema)

/** Defaults overlaid with `input`, validated; errors name the option. */
export function resolveSandboxConfig (input: SandboxConfigInput = {}): SandboxConfig {
  const d = defaultSandboxConfig()
  const merged: SandboxConfig = {
    ...d,
    ...stripUndefined(input),
    memory: { ...d.memory, ...stripUndefined(input.memory ?? {}) },
    cpus: { ...d.cpus, ...stripUndefined(input.cpus ?? {}) },
    timeout: { ...d.timeout, ...stripUndefined(input.timeout ?? {}) },
    gpus: { ...d.gpus, ...stripUndefined(input.gpus ?? {}) }
  }
  if (!validate(merged)) {
    const e = validate.errors?.[0]
    const path = (e?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.')
    const extra = e?.keyword === 'additionalProperties' ? (e.params as { additionalProperty: string }).additionalProperty : undefined
    throw new SandboxConfigError(extra !== undefined
      ? `unknown sandbox option '${path === '' ? extra : `${path}.${extra}`}'`
      : `invalid sandbox option '${path}': ${e?.message ?? 'invalid'}`)
  }
  if (merged.memory.defaultBytes > merged.memory.maxBytes) throw new SandboxConfigError(`sandbox option 'memory.defaultBytes' (${merged.memory.defaultBytes}) exceeds 'memory.maxBytes' (${merged.memory.maxBytes})`)
  if (merged.cpus.default > merged.cpus.max) throw new SandboxConfigError(`sandbox option 'cpus.default' (${merged.cpus.default}) exceeds 'cpus.max' (${merged.cpus.max})`)
  if (merged.timeout.defaultMs > merged.timeout.maxMs) throw new SandboxConfigError(`sandbox option 'timeout.defaultMs' (${merged.timeout.defaultMs}) exceeds 'timeout.maxMs' (${merged.timeout.maxMs})`)
  return merged
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: MiB, mib: MiB, gi: GiB, gib: GiB, ti: 1024 * GiB, tib: 1024 * GiB
}

/**
 * Parses a manifest size ("512Mi", "1GB", "2g", "1.5GiB", 1048576) into bytes. Decimal units
 * (KB, MB, GB) are powers of 1000, binary ones (Ki, MiB, Gi) powers of 1024.
 */
export function parseByteSize (value: string | number, what = 'size'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new SandboxConfigError(`invalid ${what} ${value}: expected a whole number of bytes`)
    return value
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value)
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()]
  if (m === null || unit === undefined) throw new SandboxConfigError(`invalid ${what} '${value}': expected a number with an optional unit such as 512Mi, 1GiB or 2GB`)
  const bytes = Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new SandboxConfigError(`invalid ${what} '${value}': too large`)
  return bytes
}
