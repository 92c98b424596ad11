import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { ManifestError, type Issue } from './errors.js'
import { parseYamlLocated, ajvIssues, sortIssues, type LocatedYaml } from './yaml.js'

export const MANIFEST_FILE = 'manifest.yaml'
/** A manifest is metadata: anything bigger is a mistake or an attack on the parser. */
export const MAX_MANIFEST_BYTES = 64 * 1024

export const TASK_TYPES = ['training', 'analysis', 'preprocessing', 'inference'] as const
export type TaskType = typeof TASK_TYPES[number]
export const GPU_MODES = ['required', 'optional', 'none'] as const
export const FRAMEWORKS = ['pytorch', 'tensorflow', 'transformers', 'jax', 'numpy', 'scikit-learn', 'custom'] as const
export const FEDERATED_PROTOCOLS = ['fedavg', 'fedprox', 'scaffold'] as const
export const DP_MODES = ['required', 'optional', 'none'] as const
export const LLM_TRAINING_METHODS = ['lora', 'qlora', 'full'] as const
/** Precision class: sets the tolerance Proof of Sampling uses when it compares float outputs. */
export const PRECISION_CLASSES = ['high', 'standard', 'low'] as const

const StringEnum = <T extends string>(values: readonly T[], options: Record<string, unknown> = {}): TSchema & { static: T } =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options })

const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KMGTP]i?B?|B)?$'
const Size = (description: string): TSchema => Type.Union([
  Type.String({ pattern: SIZE_PATTERN }),
  Type.Integer({ minimum: 0 })
], { hint: 'a size such as 512Mi, 1Gi or 16GB', description })

const FormatList = Type.Union([
  Type.String({ pattern: '^\\.[A-Za-z0-9][A-Za-z0-9._-]{0,31}$' }),
  Type.Array(Type.String({ pattern: '^\\.[A-Za-z0-9][A-Za-z0-9._-]{0,31}$' }), { minItems: 1, maxItems: 32 })
], { hint: "a file extension such as '.safetensors' or a list of them" })

const IDENT = '^[a-z][a-z0-9_]{0,63}$'

const IoSpec = Type.Object({
  name: Type.String({ pattern: IDENT, hint: 'a lower-case identifier such as model_weights', description: 'name the task code uses for this input or output' }),
  type: Type.String({ pattern: IDENT, hint: 'a lower-case identifier such as tensor, wsi, csv or model_weights', description: 'kind of data' }),
  format: FormatList,
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  optional: Type.Optional(Type.Boolean({ description: 'inputs only: the task runs without it' }))
}, { additionalProperties: false })

export const ManifestSchema = Type.Object({
  apiVersion: Type.Literal('v1', { description: 'manifest format version' }),
  kind: Type.Literal('TaskPackage'),
  metadata: Type.Object({
    name: Type.String({ pattern: '^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$', hint: 'a lower-case name of letters, digits, ".", "_" and "-" (at most 64)' }),
    version: Type.String({ pattern: '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]{1,64})?$', hint: 'a semantic version such as 1.0.0' }),
    author: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    description: Type.String({ minLength: 1, maxLength: 4096 }),
    license: Type.Optional(Type.String({ minLength: 1, maxLength: 128 }))
  }, { additionalProperties: false }),
  spec: Type.Object({
    type: StringEnum(TASK_TYPES),
    framework: StringEnum(FRAMEWORKS),
    precision: Type.Optional(StringEnum(PRECISION_CLASSES, { description: 'float comparison tolerance class for verification; default standard' })),
    entrypoint: Type.Optional(Type.String({ pattern: '^src/[A-Za-z0-9_/]+\\.py(:[A-Za-z_][A-Za-z0-9_]*)?$', hint: "a Python file under src/, optionally with a class: 'src/task.py:MyTask'" })),
    requirements: Type.Object({
      python: Type.String({ pattern: '^\\s*(?:(?:>=|<=|==|~=|!=|>|<)\\s*[0-9]+(?:\\.[0-9]+){0,2}\\s*)(?:,\\s*(?:>=|<=|==|~=|!=|>|<)\\s*[0-9]+(?:\\.[0-9]+){0,2}\\s*)*$', hint: "a version constraint such as '>=3.8' or '>=3.9,<3.13'" }),
      gpu: StringEnum(GPU_MODES),
      memory: Size('memory the task needs'),
      gpu_memory: Type.Optional(Size('GPU memory the task needs')),
      storage: Type.Optional(Size('scratch storage the task needs'))
    }, { additionalProperties: false }),
    inputs: Type.Array(IoSpec, { maxItems: 64 }),
    outputs: Type.Array(IoSpec, { minItems: 1, maxItems: 64 }),
    federated: Type.Optional(Type.Object({
      protocol: StringEnum(FEDERATED_PROTOCOLS),
      aggregation_compatible: Type.Optional(Type.Boolean()),
      differential_privacy: StringEnum(DP_MODES),
      mu: Type.Optional(Type.Number({ minimum: 0, description: 'FedProx proximal term' }))
    }, { additionalProperties: false })),
    llm_config: Type.Optional(Type.Object({
      base_model: Type.String({ minLength: 1, maxLength: 256 }),
      training_method: StringEnum(LLM_TRAINING_METHODS),
      lora_config: Type.Optional(Type.Object({
        r: Type.Integer({ minimum: 1, maximum: 4096 }),
        lora_alpha: Type.Number({ exclusiveMinimum: 0 }),
        lora_dropout: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
        target_modules: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 256 })
      }, { additionalProperties: false }))
    }, { additionalProperties: false })),
    analysis_config: Type.Optional(Type.Object({
      methods: Type.Array(Type.String({ pattern: IDENT, hint: 'a lower-case identifier such as spatial_statistics' }), { minItems: 1, maxItems: 64 }),
      privacy_preserving: Type.Optional(Type.Boolean()),
      statistical_significance: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }))
    }, { additionalProperties: false })),
    sample_inputs: Type.Optional(Type.Record(Type.String({ pattern: IDENT }), Type.String({ pattern: '^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,255}$', hint: 'a relative path inside the taskpack such as tests/samples/x.safetensors' }), { description: 'input name -> file inside the taskpack used for the dry run' }))
  }, { additionalProperties: false })
}, { additionalProperties: false })

export type Manifest = Static<typeof ManifestSchema>

/** Resource requests with sizes in bytes. */
export interface ManifestResources {
  memoryBytes: number
  gpu: typeof GPU_MODES[number]
  gpuMemoryBytes?: number
  storageBytes?: number
}

export interface ParsedManifest {
  manifest: Manifest
  resources: ManifestResources
  precision: typeof PRECISION_CLASSES[number]
  /** file and optional class of the task entry point */
  entrypoint: { file: string, className?: string }
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true })
const validateSchema = ajv.compile(ManifestSchema)

const UNITS: Record<string, number> = {
  '': 1, B: 1,
  K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9, T: 1e12, TB: 1e12, P: 1e15, PB: 1e15,
  Ki: 2 ** 10, KiB: 2 ** 10, Mi: 2 ** 20, MiB: 2 ** 20, Gi: 2 ** 30, GiB: 2 ** 30, Ti: 2 ** 40, TiB: 2 ** 40, Pi: 2 ** 50, PiB: 2 ** 50
}

/**
 * "512Mi" -> 536870912, "16GB" -> 16000000000, 1024 -> 1024. Binary suffixes (Ki, Mi, Gi) are powers
 * of 1024 and decimal ones (K, M, G, optionally with B) powers of 1000, as in Kubernetes.
 */
export function parseSize (value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`invalid size ${value}`)
    return value
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]i?B?|B)?$/.exec(value.trim())
  const unit = UNITS[m?.[2] ?? '']
  if (m === null || unit === undefined) throw new RangeError(`invalid size '${value}': use a number with a unit such as 512Mi, 1Gi or 16GB`)
  const bytes = Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`size '${value}' is too large`)
  return bytes
}

export function formatSize (bytes: number): string {
  for (const [unit, n] of [['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['Ki', 2 ** 10]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`
  }
  return `${bytes}`
}

/** Parses and validates manifest.yaml text. Throws ManifestError listing every problem with its line. */
export function parseManifest (text: string, file = MANIFEST_FILE): ParsedManifest {
  if (Buffer.byteLength(text, 'utf8') > MAX_MANIFEST_BYTES) {
    throw new ManifestError(file, [{ path: '', message: `is larger than ${MAX_MANIFEST_BYTES} bytes` }])
  }
  const parsed = parseYamlLocated(text)
  if (!parsed.ok) throw new ManifestError(file, parsed.issues)
  const { value } = parsed.doc
  if (value === null || value === undefined) throw new ManifestError(file, [{ path: '', line: 1, message: 'is empty: expected a mapping with apiVersion, kind, metadata and spec' }])
  if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError(file, [{ path: '', line: 1, message: 'must be a YAML mapping with apiVersion, kind, metadata and spec' }])
  if (!validateSchema(value)) {
    throw new ManifestError(file, ajvIssues(validateSchema.errors ?? [], value, p => parsed.doc.lineOf(p) ?? 1))
  }
  const manifest = value as Manifest
  const issues = semanticIssues(manifest, parsed.doc)
  if (issues.length > 0) throw new ManifestError(file, sortIssues(issues))
  const req = manifest.spec.requirements
  const resources: ManifestResources = { memoryBytes: parseSize(req.memory as string | number), gpu: req.gpu }
  if (req.gpu_memory !== undefined) resources.gpuMemoryBytes = parseSize(req.gpu_memory as string | number)
  if (req.storage !== undefined) resources.storageBytes = parseSize(req.storage as string | number)
  const [epFile, className] = (manifest.spec.entrypoint ?? 'src/task.py').split(':') as [string, string | undefined]
  return {
    manifest,
    resources,
    precision: manifest.spec.precision ?? 'standard',
    entrypoint: className !== undefined ? { file: epFile, className } : { file: epFile }
  }
}

/** Rules a JSON Schema cannot say (or cannot say clearly). */
function semanticIssues (m: Manifest, doc: LocatedYaml): Issue[] {
  const issues: Issue[] = []
  const at = (path: Array<string | number>, message: string): void => {
    const line = doc.lineOf(path)
    issues.push({ path: path.map(String).join('.'), ...(line !== undefined ? { line } : {}), message })
  }
  for (const side of ['inputs', 'outputs'] as const) {
    const seen = new Map<string, number>()
    m.spec[side].forEach((io, i) => {
      const first = seen.get(io.name)
      if (first !== undefined) at(['spec', side, i, 'name'], `spec.${side}[${i}].name '${io.name}' is already used by spec.${side}[${first}]`)
      else seen.set(io.name, i)
      if (side === 'outputs' && io.optional !== undefined) at(['spec', side, i, 'optional'], `spec.outputs[${i}].optional is only meaningful for inputs`)
    })
  }
  const req = m.spec.requirements
  const sizes: Array<['memory' | 'gpu_memory' | 'storage', string | number | undefined]> = [['memory', req.memory as string | number], ['gpu_memory', req.gpu_memory as string | number | undefined], ['storage', req.storage as string | number | undefined]]
  for (const [key, v] of sizes) {
    if (v === undefined) continue
    try {
      const bytes = parseSize(v)
      if (key === 'memory' && bytes === 0) at(['spec', 'requirements', key], 'spec.requirements.memory must be more than 0')
    } catch (err) {
      at(['spec', 'requirements', key], `spec.requirements.${key}: ${(err as Error).message}`)
    }
  }
  if (req.gpu === 'none' && req.gpu_memory !== undefined) {
    at(['spec', 'requirements', 'gpu_memory'], "spec.requirements.gpu_memory is set but spec.requirements.gpu is 'none'")
  }
  const fed = m.spec.federated
  if (fed?.mu !== undefined && fed.protocol !== 'fedprox') {
    at(['spec', 'federated', 'mu'], `spec.federated.mu is the FedProx proximal term; protocol is '${fed.protocol}'`)
  }
  if (m.spec.llm_config?.lora_config !== undefined && m.spec.llm_config.training_method === 'full') {
    at(['spec', 'llm_config', 'lora_config'], "spec.llm_config.lora_config is set but training_method is 'full'")
  }
  if (m.spec.sample_inputs !== undefined) {
    const names = new Set(m.spec.inputs.map(i => i.name))
    for (const [name, path] of Object.entries(m.spec.sample_inputs)) {
      if (!names.has(name)) at(['spec', 'sample_inputs', name], `spec.sample_inputs.${name} names no input in spec.inputs (inputs: ${[...names].join(', ') || 'none'})`)
      if (path.split('/').some(s => s === '..' || s === '.' || s === '')) at(['spec', 'sample_inputs', name], `spec.sample_inputs.${name} must be a plain relative path inside the taskpack (got '${path}')`)
    }
  }
  return issues
}

/** What a node offers, for the capability check before it accepts a taskpack. */
export interface NodeCapabilities {
  memoryBytes: number
  gpuMemoryBytes: number
  hasGpu: boolean
  storageBytes?: number
}

/** Shortfalls of a node against a manifest's requirements; empty when the node can run it. */
export function capabilityShortfalls (resources: ManifestResources, caps: NodeCapabilities): string[] {
  const out: string[] = []
  if (resources.memoryBytes > caps.memoryBytes) out.push(`needs ${formatSize(resources.memoryBytes)} memory, node offers ${formatSize(caps.memoryBytes)}`)
  if (resources.gpu === 'required' && !caps.hasGpu) out.push('needs a GPU, node has none')
  if (resources.gpu === 'required' && resources.gpuMemoryBytes !== undefined && resources.gpuMemoryBytes > caps.gpuMemoryBytes) {
    out.push(`needs ${formatSize(resources.gpuMemoryBytes)} GPU memory, node offers ${formatSize(caps.gpuMemoryBytes)}`)
  }
  if (resources.storageBytes !== undefined && caps.storageBytes !== undefined && resources.storageBytes > caps.storageBytes) {
    out.push(`needs ${formatSize(resources.storageBytes)} storage, node offers ${formatSize(caps.storageBytes)}`)
  }
  return out
}
