import { createHash } from 'node:crypto'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { canonicalBytes } from './canonical.js'
import { DTYPES } from './tensor/safetensors.js'

/**
 * A model is an immutable DAG of tasks. Task 0 stands for the model itself: a connection from task 0
 * reads a model input, a connection to task 0 writes a model output (as in the settlement spec's
 * TaskConnection). Tasks pin their taskpack by CID, never by a name that could later resolve elsewhere.
 * The model id is the CID of the canonical JSON of the definition.
 */

export const MODEL_FORMAT = 'bitflow-model/1'
export const MODEL_IO_TASK_ID = 0

const DIM_PATTERN = '^([0-9]{1,12}|[A-Za-z_][A-Za-z0-9_]{0,63}|\\?)$'
const StringEnum = <T extends string>(values: readonly T[]): TSchema & { static: T } => Type.Unsafe<T>({ type: 'string', enum: [...values] })

export const TensorSpecSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 128 }),
  dimensions: Type.Array(Type.String({ pattern: DIM_PATTERN, hint: "a dimension: a number such as 224, a symbol such as 'batch', or '?'" }), { maxItems: 32, description: 'symbolic dimensions; a symbol is shared within its task (or, for model inputs/outputs and connections, within the model)' }),
  shape: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 32, description: 'concrete shape when known' })),
  dtype: StringEnum(DTYPES)
}, { additionalProperties: false })
export type TensorSpec = Static<typeof TensorSpecSchema>

const CID_STRING = Type.String({ pattern: '^b[a-z2-7]{20,200}$', hint: 'a CIDv1 in base32 (bafy...)' })

export const ModelTaskSchema = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }),
  description: Type.String({ maxLength: 4096 }),
  taskpack: CID_STRING,
  computeUnits: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }),
  vramRequirement: Type.Integer({ minimum: 0, description: 'bytes of GPU memory' }),
  inputs: Type.Array(TensorSpecSchema, { maxItems: 64 }),
  outputs: Type.Array(TensorSpecSchema, { minItems: 1, maxItems: 64 }),
  weightUri: Type.Optional(Type.String({ pattern: '^ipfs://b[a-z2-7]{20,200}$', hint: 'ipfs://<CIDv1 base32>' })),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'parameters for the taskpack, checked against its configs/schema.json' }))
}, { additionalProperties: false })
export type ModelTask = Static<typeof ModelTaskSchema>

export const TaskConnectionSchema = Type.Object({
  sourceTaskId: Type.Integer({ minimum: 0 }),
  destinationTaskId: Type.Integer({ minimum: 0 }),
  sourceOutputIndex: Type.Integer({ minimum: 0 }),
  destInputIndex: Type.Integer({ minimum: 0 }),
  tensorSpec: TensorSpecSchema
}, { additionalProperties: false })
export type TaskConnection = Static<typeof TaskConnectionSchema>

export const ModelDefinitionSchema = Type.Object({
  format: Type.Literal(MODEL_FORMAT),
  name: Type.String({ minLength: 1, maxLength: 128 }),
  description: Type.String({ maxLength: 4096 }),
  creator: Type.String({ maxLength: 128 }),
  inputs: Type.Array(TensorSpecSchema, { maxItems: 64 }),
  outputs: Type.Array(TensorSpecSchema, { minItems: 1, maxItems: 64 }),
  tasks: Type.Array(ModelTaskSchema, { minItems: 1, maxItems: 1024 }),
  connections: Type.Array(TaskConnectionSchema, { maxItems: 16384 })
}, { additionalProperties: false })
export type ModelDefinition = Static<typeof ModelDefinitionSchema>

export type ModelIssueCode =
  | 'ERR_MODEL_SCHEMA' | 'ERR_MODEL_DUPLICATE_TASK' | 'ERR_MODEL_UNKNOWN_TASK' | 'ERR_MODEL_BAD_INDEX'
  | 'ERR_MODEL_CYCLE' | 'ERR_MODEL_DANGLING_INPUT' | 'ERR_MODEL_MULTIPLE_SOURCES' | 'ERR_MODEL_DTYPE_MISMATCH'
  | 'ERR_MODEL_RANK_MISMATCH' | 'ERR_MODEL_DIMENSION_MISMATCH' | 'ERR_MODEL_BAD_SPEC' | 'ERR_MODEL_UNUSED_INPUT'
  | 'ERR_MODEL_DISCONNECTED' | 'ERR_MODEL_BAD_CID' | 'ERR_MODEL_UNRESOLVABLE' | 'ERR_MODEL_ID_MISMATCH'

export interface ModelIssue {
  code: ModelIssueCode
  message: string
  /** the task the problem is in, when it is in one */
  taskId?: number
  /** index into `connections`, when the problem is an edge */
  connection?: number
}

export class ModelError extends Error {
  readonly code = 'ERR_MODEL_INVALID'
  readonly issues: ModelIssue[]
  constructor (issues: ModelIssue[]) {
    super(issues.length === 1 ? issues[0]!.message : `model definition has ${issues.length} problems:\n${issues.map(i => `- ${i.message}`).join('\n')}`)
    this.name = 'ModelError'
    this.issues = issues
  }
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true })
const validateSchema = ajv.compile(ModelDefinitionSchema)

function schemaIssues (): ModelIssue[] {
  return (validateSchema.errors ?? []).slice(0, 20).map(e => {
    const path = e.instancePath.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replaceAll('/', '.')
    const hint = (e.parentSchema as { hint?: string } | undefined)?.hint
    const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : ''
    const what = e.keyword === 'pattern' && hint !== undefined ? `must be ${hint}` : e.keyword === 'enum' ? `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : `${e.message ?? 'is invalid'}${extra}`
    return { code: 'ERR_MODEL_SCHEMA' as const, message: `${path === '' ? 'model' : path} ${what}` }
  })
}

type Endpoint = { kind: 'model-input' | 'model-output' | 'task-input' | 'task-output', taskId: number, index: number }

/**
 * Checks a model definition: schema; task ids unique; every connection's ends exist; acyclic; every
 * task input and model output fed by exactly one connection; every model input used and every task
 * leading to a model output; each edge's tensor specs agree in dtype, rank and dimensions (symbols
 * unified across the whole model). Throws ModelError listing every problem with its task or edge.
 */
export function validateModel (value: unknown): ModelDefinition {
  if (!validateSchema(value)) throw new ModelError(schemaIssues())
  const model = value as ModelDefinition
  const issues: ModelIssue[] = []
  const tasks = new Map<number, ModelTask>()
  for (const t of model.tasks) {
    if (tasks.has(t.id)) issues.push({ code: 'ERR_MODEL_DUPLICATE_TASK', taskId: t.id, message: `task ${t.id} is defined twice` })
    tasks.set(t.id, t)
    checkCid(t.taskpack, `task ${t.id} taskpack`, t.id, issues)
    if (t.weightUri !== undefined) checkCid(t.weightUri.slice('ipfs://'.length), `task ${t.id} weightUri`, t.id, issues)
    t.inputs.forEach((s, i) => { checkSpec(s, `task ${t.id} input ${i} '${s.name}'`, t.id, issues) })
    t.outputs.forEach((s, i) => { checkSpec(s, `task ${t.id} output ${i} '${s.name}'`, t.id, issues) })
  }
  model.inputs.forEach((s, i) => { checkSpec(s, `model input ${i} '${s.name}'`, undefined, issues) })
  model.outputs.forEach((s, i) => { checkSpec(s, `model output ${i} '${s.name}'`, undefined, issues) })

  const specAt = (e: Endpoint): TensorSpec | undefined => {
    if (e.kind === 'model-input') return model.inputs[e.index]
    if (e.kind === 'model-output') return model.outputs[e.index]
    const t = tasks.get(e.taskId)
    return e.kind === 'task-input' ? t?.inputs[e.index] : t?.outputs[e.index]
  }
  const describe = (e: Endpoint): string => {
    const spec = specAt(e)
    const name = spec !== undefined ? ` '${spec.name}'` : ''
    switch (e.kind) {
      case 'model-input': return `model input ${e.index}${name}`
      case 'model-output': return `model output ${e.index}${name}`
      case 'task-input': return `task ${e.taskId} input ${e.index}${name}`
      case 'task-output': return `task ${e.taskId} output ${e.index}${name}`
    }
  }

  // ends of each connection
  const edges: Array<{ k: number, src: Endpoint, dst: Endpoint, label: string } | undefined> = model.connections.map((c, k) => {
    const src: Endpoint = c.sourceTaskId === MODEL_IO_TASK_ID ? { kind: 'model-input', taskId: 0, index: c.sourceOutputIndex } : { kind: 'task-output', taskId: c.sourceTaskId, index: c.sourceOutputIndex }
    const dst: Endpoint = c.destinationTaskId === MODEL_IO_TASK_ID ? { kind: 'model-output', taskId: 0, index: c.destInputIndex } : { kind: 'task-input', taskId: c.destinationTaskId, index: c.destInputIndex }
    let ok = true
    for (const [end, id] of [['source', c.sourceTaskId], ['destination', c.destinationTaskId]] as const) {
      if (id !== MODEL_IO_TASK_ID && !tasks.has(id)) {
        issues.push({ code: 'ERR_MODEL_UNKNOWN_TASK', connection: k, message: `connection ${k}: ${end} task ${id} does not exist (tasks: ${[...tasks.keys()].join(', ')}; 0 is the model itself)` })
        ok = false
      }
    }
    if (!ok) return undefined
    if (c.sourceTaskId === MODEL_IO_TASK_ID && c.destinationTaskId === MODEL_IO_TASK_ID) {
      issues.push({ code: 'ERR_MODEL_DISCONNECTED', connection: k, message: `connection ${k} links a model input straight to a model output; route it through a task` })
      return undefined
    }
    for (const [e, which] of [[src, 'sourceOutputIndex'], [dst, 'destInputIndex']] as const) {
      if (specAt(e) === undefined) {
        const have = e.kind === 'model-input' ? model.inputs.length : e.kind === 'model-output' ? model.outputs.length : e.kind === 'task-input' ? tasks.get(e.taskId)!.inputs.length : tasks.get(e.taskId)!.outputs.length
        issues.push({ code: 'ERR_MODEL_BAD_INDEX', connection: k, ...(e.taskId !== 0 ? { taskId: e.taskId } : {}), message: `connection ${k}: ${which} ${e.index} is out of range: ${e.taskId === 0 ? 'the model' : `task ${e.taskId}`} has ${have} ${e.kind.endsWith('input') ? 'inputs' : 'outputs'}` })
        ok = false
      }
    }
    return ok ? { k, src, dst, label: `connection ${k} (${describe(src)} -> ${describe(dst)})` } : undefined
  })

  // every destination fed exactly once
  const feeders = new Map<string, number[]>()
  for (const e of edges) {
    if (e === undefined) continue
    const key = `${e.dst.kind}:${e.dst.taskId}:${e.dst.index}`
    feeders.set(key, [...(feeders.get(key) ?? []), e.k])
  }
  const checkFed = (dst: Endpoint, optional: boolean): void => {
    const fed = feeders.get(`${dst.kind}:${dst.taskId}:${dst.index}`) ?? []
    if (fed.length === 0 && !optional) {
      issues.push({ code: 'ERR_MODEL_DANGLING_INPUT', ...(dst.taskId !== 0 ? { taskId: dst.taskId } : {}), message: `${describe(dst)} has no incoming connection (dangling input)` })
    } else if (fed.length > 1) {
      issues.push({ code: 'ERR_MODEL_MULTIPLE_SOURCES', ...(dst.taskId !== 0 ? { taskId: dst.taskId } : {}), connection: fed[1]!, message: `${describe(dst)} is fed by connections ${fed.join(', ')}; an input takes exactly one` })
    }
  }
  for (const t of tasks.values()) t.inputs.forEach((_, i) => { checkFed({ kind: 'task-input', taskId: t.id, index: i }, false) })
  model.outputs.forEach((_, i) => { checkFed({ kind: 'model-output', taskId: 0, index: i }, false) })
  const usedInputs = new Set(edges.filter(e => e?.src.kind === 'model-input').map(e => e!.src.index))
  model.inputs.forEach((s, i) => {
    if (!usedInputs.has(i)) issues.push({ code: 'ERR_MODEL_UNUSED_INPUT', message: `model input ${i} '${s.name}' is not used by any connection` })
  })

  // cycles, then tasks that lead to no model output
  const succ = new Map<number, Array<{ to: number, k: number }>>()
  for (const id of tasks.keys()) succ.set(id, [])
  for (const e of edges) if (e !== undefined && e.src.taskId !== 0 && e.dst.taskId !== 0) succ.get(e.src.taskId)!.push({ to: e.dst.taskId, k: e.k })
  const cycle = findCycle(succ)
  if (cycle !== undefined) {
    issues.push({ code: 'ERR_MODEL_CYCLE', taskId: cycle.tasks[0]!, connection: cycle.connections[0]!, message: `tasks form a cycle: ${cycle.tasks.map(t => `task ${t}`).join(' -> ')} (connections ${cycle.connections.join(', ')})` })
  }
  const reachesOutput = new Set<number>()
  const pred = new Map<number, number[]>()
  for (const e of edges) {
    if (e === undefined) continue
    if (e.dst.kind === 'model-output' && e.src.taskId !== 0) reachesOutput.add(e.src.taskId)
    if (e.src.taskId !== 0 && e.dst.taskId !== 0) pred.set(e.dst.taskId, [...(pred.get(e.dst.taskId) ?? []), e.src.taskId])
  }
  const stack = [...reachesOutput]
  while (stack.length > 0) {
    for (const p of pred.get(stack.pop()!) ?? []) if (!reachesOutput.has(p)) { reachesOutput.add(p); stack.push(p) }
  }
  for (const id of tasks.keys()) {
    if (!reachesOutput.has(id)) issues.push({ code: 'ERR_MODEL_DISCONNECTED', taskId: id, message: `task ${id} does not lead to any model output; the model must be one connected graph from its inputs to its outputs` })
  }

  // tensor specs on every edge
  const dims = new DimUnifier()
  for (const e of edges) {
    if (e === undefined) continue
    const c = model.connections[e.k]!
    const src = specAt(e.src)!
    const dst = specAt(e.dst)!
    const mine = { code: 'ERR_MODEL_DTYPE_MISMATCH' as const, connection: e.k }
    if (src.dtype !== dst.dtype || c.tensorSpec.dtype !== src.dtype) {
      const declared = c.tensorSpec.dtype !== src.dtype && c.tensorSpec.dtype !== dst.dtype ? `, the connection declares ${c.tensorSpec.dtype}` : c.tensorSpec.dtype !== src.dtype || c.tensorSpec.dtype !== dst.dtype ? ` (the connection declares ${c.tensorSpec.dtype})` : ''
      issues.push({ ...mine, message: `${e.label}: dtype mismatch: the source produces ${src.dtype}, the destination expects ${dst.dtype}${declared}` })
      continue
    }
    if (src.dimensions.length !== dst.dimensions.length || c.tensorSpec.dimensions.length !== src.dimensions.length) {
      issues.push({ code: 'ERR_MODEL_RANK_MISMATCH', connection: e.k, message: `${e.label}: rank mismatch: the source has ${src.dimensions.length} dimensions [${src.dimensions.join(', ')}], the destination ${dst.dimensions.length} [${dst.dimensions.join(', ')}]${c.tensorSpec.dimensions.length !== src.dimensions.length ? `, the connection ${c.tensorSpec.dimensions.length}` : ''}` })
      continue
    }
    const scope = (ep: Endpoint): string => ep.taskId === 0 ? 'model' : `task ${ep.taskId}`
    for (let d = 0; d < src.dimensions.length; d++) {
      const a = dims.term(src, d, scope(e.src))
      const b = dims.term(dst, d, scope(e.dst))
      const m = dims.term(c.tensorSpec, d, 'model')
      const problem = dims.unify(a, m, e.label) ?? dims.unify(a, b, e.label)
      if (problem !== undefined) {
        issues.push({ code: 'ERR_MODEL_DIMENSION_MISMATCH', connection: e.k, message: `${e.label}: dimension ${d} mismatch: ${problem}` })
        break
      }
    }
  }
  if (issues.length > 0) throw new ModelError(issues)
  return model
}

function checkCid (s: string, what: string, taskId: number | undefined, issues: ModelIssue[]): void {
  try {
    const cid = CID.parse(s)
    if (cid.version !== 1 || cid.toString() !== s) throw new Error('not canonical')
  } catch {
    issues.push({ code: 'ERR_MODEL_BAD_CID', ...(taskId !== undefined ? { taskId } : {}), message: `${what} '${s}' is not a CIDv1 in base32` })
  }
}

function checkSpec (s: TensorSpec, what: string, taskId: number | undefined, issues: ModelIssue[]): void {
  if (s.shape === undefined) return
  if (s.shape.length !== s.dimensions.length) {
    issues.push({ code: 'ERR_MODEL_BAD_SPEC', ...(taskId !== undefined ? { taskId } : {}), message: `${what}: shape [${s.shape.join(', ')}] and dimensions [${s.dimensions.join(', ')}] differ in rank` })
    return
  }
  s.dimensions.forEach((d, i) => {
    if (/^[0-9]+$/.test(d) && Number(d) !== s.shape![i]) issues.push({ code: 'ERR_MODEL_BAD_SPEC', ...(taskId !== undefined ? { taskId } : {}), message: `${what}: dimension ${i} is ${d} but shape says ${s.shape![i]}` })
  })
}

function findCycle (succ: Map<number, Array<{ to: number, k: number }>>): { tasks: number[], connections: number[] } | undefined {
  const state = new Map<number, 1 | 2>() // 1 on the stack, 2 done
  const path: Array<{ task: number, via: number }> = []
  const visit = (n: number, via: number): { tasks: number[], connections: number[] } | undefined => {
    state.set(n, 1)
    path.push({ task: n, via })
    for (const { to, k } of succ.get(n) ?? []) {
      if (state.get(to) === 1) {
        const start = path.findIndex(p => p.task === to)
        const loop = path.slice(start)
        return { tasks: [...loop.map(p => p.task), to], connections: [...loop.slice(1).map(p => p.via), k] }
      }
      if (state.get(to) === undefined) {
        const found = visit(to, k)
        if (found !== undefined) return found
      }
    }
    path.pop()
    state.set(n, 2)
    return undefined
  }
  for (const n of [...succ.keys()].sort((a, b) => a - b)) {
    if (state.get(n) === undefined) {
      const found = visit(n, -1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

type DimTerm = { value: number } | { symbol: string }

/** Union-find over dimension symbols; a class may be bound to one concrete size. */
class DimUnifier {
  private readonly parent = new Map<string, string>()
  private readonly bound = new Map<string, { value: number, by: string }>()
  private fresh = 0

  term (spec: TensorSpec, d: number, scope: string): DimTerm {
    const dim = spec.dimensions[d]!
    if (/^[0-9]+$/.test(dim)) return { value: Number(dim) }
    const symbol = dim === '?' ? `?${this.fresh++}` : `${scope}:${dim}`
    const concrete = spec.shape?.[d]
    if (concrete !== undefined) this.unify({ symbol }, { value: concrete }, `the shape of ${scope} tensor '${spec.name}'`)
    return { symbol }
  }

  private find (s: string): string {
    let r = s
    while (this.parent.has(r)) r = this.parent.get(r)!
    return r
  }

  private show (t: DimTerm): string {
    if ('value' in t) return String(t.value)
    const [scope, name] = [t.symbol.slice(0, t.symbol.lastIndexOf(':')), t.symbol.slice(t.symbol.lastIndexOf(':') + 1)]
    return t.symbol.startsWith('?') ? '?' : `'${name}' of ${scope}`
  }

  /** Returns a description of the conflict, or undefined when the two can be the same size. */
  unify (a: DimTerm, b: DimTerm, by: string): string | undefined {
    if ('value' in a && 'value' in b) return a.value === b.value ? undefined : `the source has ${a.value}, the destination ${b.value}`
    if ('value' in a) return this.unify(b, a, by)
    const ra = this.find(a.symbol)
    if ('value' in b) {
      const had = this.bound.get(ra)
      if (had === undefined) { this.bound.set(ra, { value: b.value, by }); return undefined }
      return had.value === b.value ? undefined : `${this.show(a)} is ${had.value} (from ${had.by}) but must also be ${b.value}`
    }
    const rb = this.find(b.symbol)
    if (ra === rb) return undefined
    const va = this.bound.get(ra)
    const vb = this.bound.get(rb)
    if (va !== undefined && vb !== undefined && va.value !== vb.value) {
      return `${this.show(a)} is ${va.value} (from ${va.by}) but ${this.show(b)} is ${vb.value} (from ${vb.by})`
    }
    this.parent.set(rb, ra)
    if (va === undefined && vb !== undefined) this.bound.set(ra, vb)
    return undefined
  }
}

// ---- content addressing ----

/** Canonical bytes of a model definition: what its id hashes and what is stored. */
export function encodeModel (model: ModelDefinition): Uint8Array {
  return canonicalBytes(model)
}

/** modelId: CIDv1, raw codec, sha256 of the canonical JSON ("bafkrei..."). */
export function modelCid (model: ModelDefinition): CID {
  return cidOfBytes(encodeModel(model))
}

function cidOfBytes (bytes: Uint8Array): CID {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(raw.code, Digest.create(0x12, new Uint8Array(digest)))
}

/**
 * Decodes stored model bytes, checking they hash to `expected` (when given), are canonical, and
 * describe a valid model.
 */
export function decodeModel (bytes: Uint8Array, expected?: CID | string): { model: ModelDefinition, cid: CID } {
  const cid = cidOfBytes(bytes)
  if (expected !== undefined && cid.toString() !== expected.toString()) {
    throw new ModelError([{ code: 'ERR_MODEL_ID_MISMATCH', message: `model bytes hash to ${cid.toString()}, not ${expected.toString()}` }])
  }
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new ModelError([{ code: 'ERR_MODEL_SCHEMA', message: `model bytes are not UTF-8 JSON: ${(err as Error).message}` }])
  }
  const model = validateModel(value)
  if (Buffer.compare(Buffer.from(encodeModel(model)), Buffer.from(bytes)) !== 0) {
    throw new ModelError([{ code: 'ERR_MODEL_SCHEMA', message: 'model bytes are not in canonical form (sorted keys, no whitespace)' }])
  }
  return { model, cid }
}

// ---- references ----

export interface ContentRef {
  kind: 'taskpack' | 'weights'
  cid: CID
  /** tasks that reference it */
  taskIds: number[]
}

/**
 * Answers whether referenced content can be fetched (the daemon plugs in Helia). Resolve to false
 * or throw to report it missing.
 */
export type ContentResolver = (ref: ContentRef, options: { signal?: AbortSignal }) => Promise<boolean>

/** Checks every taskpack and weights CID a model references resolves. Throws ModelError naming the tasks. */
export async function verifyModelReferences (model: ModelDefinition, resolve: ContentResolver, options: { signal?: AbortSignal, concurrency?: number } = {}): Promise<void> {
  const refs = new Map<string, ContentRef>()
  const add = (kind: ContentRef['kind'], s: string, taskId: number): void => {
    const key = `${kind}:${s}`
    const ref = refs.get(key) ?? { kind, cid: CID.parse(s), taskIds: [] }
    ref.taskIds.push(taskId)
    refs.set(key, ref)
  }
  for (const t of model.tasks) {
    add('taskpack', t.taskpack, t.id)
    if (t.weightUri !== undefined) add('weights', t.weightUri.slice('ipfs://'.length), t.id)
  }
  const queue = [...refs.values()]
  const issues: ModelIssue[] = []
  const worker = async (): Promise<void> => {
    for (let ref = queue.shift(); ref !== undefined; ref = queue.shift()) {
      options.signal?.throwIfAborted()
      let ok = false
      let why = ''
      try {
        ok = await resolve(ref, options.signal !== undefined ? { signal: options.signal } : {})
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        why = `: ${(err as Error).message}`
      }
      if (!ok) {
        const who = ref.taskIds.map(id => `task ${id}`).join(', ')
        issues.push({ code: 'ERR_MODEL_UNRESOLVABLE', taskId: ref.taskIds[0]!, message: `${who}: ${ref.kind === 'taskpack' ? 'taskpack' : 'weights'} ${ref.cid.toString()} cannot be resolved${why}` })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, queue.length)) }, worker))
  if (issues.length > 0) {
    issues.sort((a, b) => (a.taskId ?? 0) - (b.taskId ?? 0))
    throw new ModelError(issues)
  }
}

/** Registration-time check: valid DAG, every reference resolvable; returns the model and its id. */
export async function prepareModel (value: unknown, resolve: ContentResolver, options: { signal?: AbortSignal } = {}): Promise<{ model: ModelDefinition, modelId: CID, bytes: Uint8Array }> {
  const model = validateModel(value)
  await verifyModelReferences(model, resolve, options)
  const bytes = encodeModel(model)
  return { model, modelId: cidOfBytes(bytes), bytes }
}
