/**
 * The execution state machine of DESIGN.md, as a pure reducer over an event log.
 *
 * Per task: UNASSIGNED → ASSIGNED → COMPLETED → (VERIFIED | PENDING_VERIFICATION);
 * PENDING_VERIFICATION → VERIFIED | VERIFICATION_FAILED; VERIFICATION_FAILED → UNASSIGNED;
 * ASSIGNED → FAILED (deadline missed, or the node reported a failed run); FAILED → UNASSIGNED with the
 * failed node blacklisted for the task. A task gets at most `maxAttempts` primary attempts; when the
 * last one fails the execution fails with a reason naming the task and the failures.
 *
 * Per execution: pending (requested, nothing assigned yet) → in-progress → completed (every task
 * VERIFIED) | failed (a task ran out of attempts, a taskpack proved nondeterministic, or aborted) |
 * cancelled. A task is ready when it is UNASSIGNED and every task feeding it is VERIFIED.
 *
 * Everything here is a function of (model, events, rules): no clocks (each event carries its time
 * `at`, in ms), no I/O, no randomness. An oracle persists the events it applied (and can rebuild
 * them from the chain's task and assignment accounts), and `replay` rebuilds the same state after a
 * restart. Events that do not apply (stale attempts, duplicates, a completion of a superseded
 * attempt) never throw: they are reported as ignored with a reason, so a log with redundant entries
 * from several sources still replays.
 */
import type { ModelDefinition } from '../model.js'
import { ExecutionError } from './errors.js'
import { isValidId, modelTaskId } from './ids.js'

export const TASK_STATES = ['UNASSIGNED', 'ASSIGNED', 'COMPLETED', 'PENDING_VERIFICATION', 'VERIFIED', 'VERIFICATION_FAILED', 'FAILED'] as const
export type TaskState = typeof TASK_STATES[number]

export const EXECUTION_STATUSES = ['pending', 'in-progress', 'completed', 'failed', 'cancelled'] as const
export type ExecutionStatus = typeof EXECUTION_STATUSES[number]

/** Every transition the state machine allows (DESIGN.md); anything else is a bug. */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  UNASSIGNED: ['ASSIGNED'],
  ASSIGNED: ['COMPLETED', 'FAILED'],
  COMPLETED: ['VERIFIED', 'PENDING_VERIFICATION'],
  PENDING_VERIFICATION: ['VERIFIED', 'VERIFICATION_FAILED'],
  VERIFIED: [],
  VERIFICATION_FAILED: ['UNASSIGNED'],
  FAILED: ['UNASSIGNED']
}

export function canTransition (from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from].includes(to)
}

export const isTerminalStatus = (s: ExecutionStatus): boolean => s === 'completed' || s === 'failed' || s === 'cancelled'

// ---- timing ------------------------------------------------------------------------------------

/** Deadline = base + perHundredCu × ceil(computeUnits / 100), as the settlement program computes it. */
export interface DeadlineTiming {
  baseMs: number
  per100CuMs: number
}

/** Network parameters: 30 s + 5 s per 100 compute units on public networks, 5 s + 1 s on `local`. */
export const DEADLINES = {
  public: { baseMs: 30_000, per100CuMs: 5_000 },
  local: { baseMs: 5_000, per100CuMs: 1_000 }
} as const satisfies Record<string, DeadlineTiming>

export function taskDeadlineMs (timing: DeadlineTiming, computeUnits: number): number {
  if (!Number.isSafeInteger(computeUnits) || computeUnits < 0) throw new ExecutionError('ERR_EXECUTION_BAD_TIMING', `compute units ${computeUnits} is not a non-negative integer`)
  if (!(timing.baseMs >= 0) || !(timing.per100CuMs >= 0)) throw new ExecutionError('ERR_EXECUTION_BAD_TIMING', 'deadline timings must be non-negative')
  return timing.baseMs + timing.per100CuMs * Math.ceil(computeUnits / 100)
}

export interface ExecutionRules {
  deadline: DeadlineTiming
  /** primary attempts per task (1..8; the chain's blacklist holds at most 8 keys) */
  maxAttempts: number
  /**
   * 'none': a completed task counts as verified at once (until Proof of Sampling lands);
   * 'sampling': a `sampled` event decides between VERIFIED and PENDING_VERIFICATION.
   */
  verification: 'none' | 'sampling'
}

export const MAX_ATTEMPTS_LIMIT = 8

export function defaultRules (network: 'local' | 'public', over: Partial<ExecutionRules> = {}): ExecutionRules {
  return { deadline: DEADLINES[network], maxAttempts: 3, verification: 'none', ...over }
}

function checkRules (rules: ExecutionRules): void {
  if (!Number.isSafeInteger(rules.maxAttempts) || rules.maxAttempts < 1 || rules.maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new ExecutionError('ERR_EXECUTION_BAD_TIMING', `maxAttempts must be 1..${MAX_ATTEMPTS_LIMIT}, got ${rules.maxAttempts}`)
  }
  taskDeadlineMs(rules.deadline, 0)
}

// ---- events ------------------------------------------------------------------------------------

/** Tensor URIs by tensor name. */
export type UriMap = Record<string, string>

export type ExecutionEvent =
  | { type: 'requested', at: number, executionId: string, modelId: string, requester: string, fee: string, requestSlot: number, inputs: UriMap }
  /** an assignment settled on chain (kind primary or verification) */
  | { type: 'assigned', at: number, taskId: string, attempt: number, node: string, kind: AssignedKind, deadlineAt?: number, selection?: SelectionRecord }
  /**
   * the assigned node's completion: its signed outputs, or (`committedOnly`, 'sampling' rules) only its
   * on-chain commitment, when the task was sampled and the outputs wait for the verifier
   */
  | { type: 'completed', at: number, taskId: string, attempt: number, node: string, outputs: UriMap, outputRoot?: string, startedAt?: number, committedOnly?: boolean }
  /** the sampling decision for a completed primary attempt ('sampling' rules only) */
  | { type: 'sampled', at: number, taskId: string, attempt: number, sampled: boolean }
  /** outcome of re-execution of a primary attempt: the verifier agreed, disagreed (asserter at fault), or three ways */
  | { type: 'verified', at: number, taskId: string, attempt: number, outcome: 'match' | 'mismatch' | 'nondeterministic', reason?: string, outputs?: UriMap, outputRoot?: string }
  /** the assigned node reported that its run failed */
  | { type: 'task-failed', at: number, taskId: string, attempt: number, node: string, reason: string }
  /**
   * the deadline of an attempt (primary or verification) passed without a completion (on chain: the
   * attempt expired); `reason` is what the node reported, when it reported a failed run
   */
  | { type: 'deadline', at: number, taskId: string, attempt: number, reason?: string }
  | { type: 'cancelled', at: number, reason?: string }
  /** the committee gives up on the execution (for instance, no eligible node and no prospect of one) */
  | { type: 'aborted', at: number, reason: string }

export type RequestedEvent = Extract<ExecutionEvent, { type: 'requested' }>

/** what an assignment was drawn from, so anyone can recompute it (known to the committee's oracles) */
export interface SelectionRecord {
  livenessRound: number
  seedSlot: number
  /** hex of the 32-byte seed */
  seed: string
  ballot: number
}

// ---- state -------------------------------------------------------------------------------------

export type TensorSource = { from: 'model-input', name: string } | { from: 'task-output', task: number, name: string }

export interface AttemptFailure {
  attempt: number
  node: string
  reason: string
  at: number
}

/**
 * Kinds of assignment: a primary attempt, a verification of it, or an unverifiable primary attempt
 * (never sampled; DESIGN.md, Proof of Sampling).
 */
export type AssignedKind = 'primary' | 'verification' | 'unverifiable'

export interface TaskRecord {
  /** `<model id>/<task number>` (see ids.ts) */
  taskId: string
  task: number
  computeUnits: number
  state: TaskState
  /** the live (or last) primary attempt, null before the first assignment */
  attempt: number | null
  /** the attempt number the next assignment of this task (primary or verification) takes, as on chain */
  nextAttempt: number
  /** the node of the live (or last successful) primary attempt */
  node: string | null
  verifier: { attempt: number, node: string, deadlineAt: number } | null
  /**
   * the live (or last) primary attempt is unverifiable: a `dataset://` input that no validator other
   * than the assigned node holds, so it is never sampled, never slashed and paid less
   * (optional: records written before this field existed lack it)
   */
  unverifiable?: boolean
  /** how the live (or last) primary attempt was drawn, when this daemon knows it */
  selection: SelectionRecord | null
  /** nodes that failed this task, sorted; never assigned it again */
  blacklist: string[]
  failures: AttemptFailure[]
  /** task numbers this task reads from, ascending */
  dependencies: number[]
  /** input tensor name → where it comes from */
  sources: Record<string, TensorSource>
  /** input URIs known so far (null until the producing task is VERIFIED) */
  inputs: Record<string, string | null>
  outputs: UriMap
  outputRoot: string | null
  /** times (ms) of the current attempt, null when not reached */
  assignedAt: number | null
  deadlineAt: number | null
  startedAt: number | null
  completedAt: number | null
  verifiedAt: number | null
}

export interface ExecutionState {
  executionId: string
  modelId: string
  requester: string
  fee: string
  requestSlot: number
  inputs: UriMap
  status: ExecutionStatus
  /** why the execution failed or was cancelled; null otherwise */
  reason: string | null
  tasks: TaskRecord[]
  /** task ids ready for assignment, ascending task number */
  ready: string[]
  /** model output name → URI once its producer is VERIFIED */
  outputs: Record<string, string | null>
  outputSources: Record<string, TensorSource>
  requestedAt: number
  startedAt: number | null
  finishedAt: number | null
  /** events applied so far (ignored ones included) */
  events: number
}

export type Transition =
  | { scope: 'task', at: number, taskId: string, from: TaskState, to: TaskState, attempt: number | null, node: string | null, reason?: string }
  | { scope: 'execution', at: number, from: ExecutionStatus, to: ExecutionStatus, reason?: string }

export interface ApplyResult {
  state: ExecutionState
  transitions: Transition[]
  /** why the event changed nothing; undefined when it applied */
  ignored?: string
}

// ---- construction ------------------------------------------------------------------------------

/** Problems with a request's inputs against the model: each missing or unknown input, or a bad URI. */
export function checkRequestInputs (model: ModelDefinition, inputs: UriMap): string[] {
  const problems: string[] = []
  const names = new Set(model.inputs.map(i => i.name))
  for (const n of names) {
    if (!Object.hasOwn(inputs, n)) problems.push(`missing input '${n}'`)
  }
  for (const [n, uri] of Object.entries(inputs)) {
    if (!names.has(n)) problems.push(`unknown input '${n}' (the model takes ${[...names].map(x => `'${x}'`).join(', ') || 'none'})`)
    else if (typeof uri !== 'string' || !/^(ipfs|dataset):\/\/[A-Za-z0-9._:\/@-]{1,256}$/.test(uri)) problems.push(`input '${n}' has an invalid URI (expected ipfs://<cid> or dataset://<id>)`)
  }
  return problems
}

function badEvent (message: string): ExecutionError {
  return new ExecutionError('ERR_EXECUTION_BAD_EVENT', message)
}

function checkTime (at: unknown, what: string): void {
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) throw badEvent(`${what}: 'at' must be a non-negative integer of milliseconds`)
}

/** The initial state of an execution from its `requested` event; throws ExecutionError on a bad request. */
export function createExecution (model: ModelDefinition, request: RequestedEvent, rules: ExecutionRules): ExecutionState {
  checkRules(rules)
  if (request.type !== 'requested') throw new ExecutionError('ERR_EXECUTION_NOT_REQUESTED', 'an execution starts with its requested event')
  checkTime(request.at, 'requested')
  if (!isValidId(request.executionId)) throw new ExecutionError('ERR_EXECUTION_BAD_ID', `execution id '${String(request.executionId).slice(0, 140)}' is not valid`)
  if (!/^[0-9]{1,20}$/.test(request.fee)) throw badEvent(`fee '${request.fee}' is not a decimal integer`)
  if (!Number.isSafeInteger(request.requestSlot) || request.requestSlot < 0) throw badEvent('request slot must be a non-negative integer')
  const problems = checkRequestInputs(model, request.inputs)
  if (problems.length > 0) throw badEvent(`request does not fit model ${request.modelId}: ${problems.join('; ')}`)

  const taskNumbers = new Set(model.tasks.map(t => t.id))
  const outputName = (task: number, index: number): string => {
    const t = model.tasks.find(x => x.id === task)
    const spec = t?.outputs[index]
    if (spec === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `connection reads output ${index} of task ${task}, which does not exist`)
    return spec.name
  }
  const sourceOf = (c: ModelDefinition['connections'][number]): TensorSource => {
    if (c.sourceTaskId === 0) {
      const spec = model.inputs[c.sourceOutputIndex]
      if (spec === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `connection reads model input ${c.sourceOutputIndex}, which does not exist`)
      return { from: 'model-input', name: spec.name }
    }
    if (!taskNumbers.has(c.sourceTaskId)) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `connection reads task ${c.sourceTaskId}, which does not exist`)
    return { from: 'task-output', task: c.sourceTaskId, name: outputName(c.sourceTaskId, c.sourceOutputIndex) }
  }

  const tasks: TaskRecord[] = [...model.tasks].sort((a, b) => a.id - b.id).map(t => {
    const sources: Record<string, TensorSource> = {}
    for (const c of model.connections) {
      if (c.destinationTaskId !== t.id) continue
      const spec = t.inputs[c.destInputIndex]
      if (spec === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `connection writes input ${c.destInputIndex} of task ${t.id}, which does not exist`)
      sources[spec.name] = sourceOf(c)
    }
    for (const spec of t.inputs) {
      if (sources[spec.name] === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `input '${spec.name}' of task ${t.id} has no incoming connection`)
    }
    const deps = [...new Set(Object.values(sources).flatMap(s => s.from === 'task-output' ? [s.task] : []))].sort((a, b) => a - b)
    return {
      taskId: modelTaskId(request.modelId, t.id),
      task: t.id,
      computeUnits: t.computeUnits,
      state: 'UNASSIGNED',
      attempt: null,
      nextAttempt: 0,
      node: null,
      verifier: null,
      unverifiable: false,
      selection: null,
      blacklist: [],
      failures: [],
      dependencies: deps,
      sources,
      inputs: Object.fromEntries(t.inputs.map(s => [s.name, null])),
      outputs: {},
      outputRoot: null,
      assignedAt: null,
      deadlineAt: null,
      startedAt: null,
      completedAt: null,
      verifiedAt: null
    } satisfies TaskRecord
  })
  const outputSources: Record<string, TensorSource> = {}
  for (const c of model.connections) {
    if (c.destinationTaskId !== 0) continue
    const spec = model.outputs[c.destInputIndex]
    if (spec === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `connection writes model output ${c.destInputIndex}, which does not exist`)
    outputSources[spec.name] = sourceOf(c)
  }
  for (const spec of model.outputs) {
    if (outputSources[spec.name] === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_MODEL', `model output '${spec.name}' has no incoming connection`)
  }

  const state: ExecutionState = {
    executionId: request.executionId,
    modelId: request.modelId,
    requester: request.requester,
    fee: request.fee,
    requestSlot: request.requestSlot,
    inputs: { ...request.inputs },
    status: 'pending',
    reason: null,
    tasks,
    ready: [],
    outputs: Object.fromEntries(model.outputs.map(o => [o.name, null])),
    outputSources,
    requestedAt: request.at,
    startedAt: null,
    finishedAt: null,
    events: 1
  }
  refresh(state, request.at, [])
  return state
}

// ---- the reducer -------------------------------------------------------------------------------

function resolve (state: ExecutionState, src: TensorSource): string | null {
  if (src.from === 'model-input') return state.inputs[src.name] ?? null
  const producer = state.tasks.find(t => t.task === src.task)
  if (producer === undefined || producer.state !== 'VERIFIED') return null
  return producer.outputs[src.name] ?? null
}

/** Recomputes inputs, outputs, the ready list and completion after a change (mutates `state`). */
function refresh (state: ExecutionState, at: number, transitions: Transition[]): void {
  for (const t of state.tasks) {
    for (const name of Object.keys(t.inputs)) t.inputs[name] = resolve(state, t.sources[name]!)
  }
  for (const name of Object.keys(state.outputs)) state.outputs[name] = resolve(state, state.outputSources[name]!)
  const verified = new Set(state.tasks.filter(t => t.state === 'VERIFIED').map(t => t.task))
  state.ready = isTerminalStatus(state.status)
    ? []
    : state.tasks.filter(t => t.state === 'UNASSIGNED' && t.dependencies.every(d => verified.has(d))).map(t => t.taskId)
  if (!isTerminalStatus(state.status) && state.tasks.every(t => t.state === 'VERIFIED')) {
    setStatus(state, 'completed', at, transitions)
  }
}

function setStatus (state: ExecutionState, to: ExecutionStatus, at: number, transitions: Transition[], reason?: string): void {
  if (state.status === to) return
  const from = state.status
  state.status = to
  if (to === 'in-progress' && state.startedAt === null) state.startedAt = at
  if (isTerminalStatus(to)) {
    state.finishedAt = at
    if (reason !== undefined) state.reason = reason
  }
  transitions.push(reason === undefined ? { scope: 'execution', at, from, to } : { scope: 'execution', at, from, to, reason })
}

function move (t: TaskRecord, to: TaskState, at: number, transitions: Transition[], reason?: string): void {
  if (!canTransition(t.state, to)) throw new ExecutionError('ERR_EXECUTION_BAD_EVENT', `internal: task ${t.taskId} cannot go from ${t.state} to ${to}`)
  const tr: Transition = { scope: 'task', at, taskId: t.taskId, from: t.state, to, attempt: t.attempt, node: t.node }
  if (reason !== undefined) tr.reason = reason
  transitions.push(tr)
  t.state = to
}

/**
 * A primary attempt failed (t is FAILED or VERIFICATION_FAILED): blacklist the node, and either put
 * the task back to UNASSIGNED or, when it used its last attempt, fail the execution.
 */
function afterFailure (state: ExecutionState, t: TaskRecord, reason: string, at: number, rules: ExecutionRules, transitions: Transition[]): void {
  const node = t.node!
  t.failures.push({ attempt: t.attempt!, node, reason, at })
  if (!t.blacklist.includes(node)) t.blacklist = [...t.blacklist, node].sort()
  if (t.failures.length >= rules.maxAttempts) {
    const history = t.failures.map(f => `attempt ${f.attempt} on ${f.node}: ${f.reason}`).join('; ')
    setStatus(state, 'failed', at, transitions, `task ${t.task} (${t.taskId}) failed ${t.failures.length} of ${rules.maxAttempts} attempts: ${history}`)
    return
  }
  move(t, 'UNASSIGNED', at, transitions, `reassigning; ${node} blacklisted for this task`)
  t.node = null
  t.assignedAt = null
  t.deadlineAt = null
  t.startedAt = null
  t.completedAt = null
  t.outputs = {}
  t.outputRoot = null
}

function checkTaskEvent (e: { taskId?: unknown, attempt?: unknown }, type: string): void {
  if (typeof e.taskId !== 'string') throw badEvent(`${type}: taskId must be a string`)
  if (typeof e.attempt !== 'number' || !Number.isSafeInteger(e.attempt) || e.attempt < 0 || e.attempt >= 0xffffffff) throw badEvent(`${type}: attempt must be an integer in 0..2^32-2`)
}

/**
 * Applies one event. Returns a new state (the input is not modified), the transitions it caused
 * (for the `execution` WebSocket topic) and, when the event changed nothing, why. Throws
 * ExecutionError only for malformed events (a programming error, not a protocol condition).
 */
export function applyEvent (prev: ExecutionState, event: ExecutionEvent, rules: ExecutionRules): ApplyResult {
  checkRules(rules)
  if (event === null || typeof event !== 'object') throw badEvent('an event is an object')
  checkTime(event.at, event.type)
  const state = structuredClone(prev)
  state.events++
  const transitions: Transition[] = []
  const ignored = (reason: string): ApplyResult => ({ state, transitions: [], ignored: reason })
  const at = event.at

  if (event.type === 'requested') {
    return event.executionId === state.executionId ? ignored('execution already requested') : ignored(`event of another execution (${event.executionId})`)
  }
  if (isTerminalStatus(state.status)) return ignored(`execution is already ${state.status}`)

  if (event.type === 'cancelled') {
    setStatus(state, 'cancelled', at, transitions, event.reason ?? 'cancelled by the requester')
    refresh(state, at, transitions)
    return { state, transitions }
  }
  if (event.type === 'aborted') {
    if (typeof event.reason !== 'string' || event.reason === '') throw badEvent('aborted: a reason is required')
    setStatus(state, 'failed', at, transitions, event.reason)
    refresh(state, at, transitions)
    return { state, transitions }
  }

  checkTaskEvent(event, event.type)
  const t = state.tasks.find(x => x.taskId === event.taskId)
  if (t === undefined) return ignored(`no task ${event.taskId} in this execution`)
  const live = t.attempt === event.attempt
  const describe = `task ${t.task} attempt ${event.attempt}`

  switch (event.type) {
    case 'assigned': {
      if (typeof event.node !== 'string' || event.node === '') throw badEvent('assigned: node is required')
      if (event.attempt < t.nextAttempt) return ignored(`${describe}: stale attempt (next is ${t.nextAttempt})`)
      if (event.kind === 'verification') {
        if (t.state !== 'PENDING_VERIFICATION') return ignored(`${describe}: verification assigned while the task is ${t.state}`)
        if (t.verifier !== null) return ignored(`${describe}: the task already has a live verifier`)
        if (event.node === t.node) return ignored(`${describe}: a node cannot verify its own result`)
        t.nextAttempt = event.attempt + 1
        t.verifier = { attempt: event.attempt, node: event.node, deadlineAt: event.deadlineAt ?? at + taskDeadlineMs(rules.deadline, t.computeUnits) }
        return { state, transitions }
      }
      if (event.kind !== 'primary' && event.kind !== 'unverifiable') throw badEvent(`assigned: unknown kind '${String(event.kind)}'`)
      if (t.state !== 'UNASSIGNED') return ignored(`${describe}: task is ${t.state}, not UNASSIGNED`)
      if (t.blacklist.includes(event.node)) return ignored(`${describe}: ${event.node} is blacklisted for this task`)
      const unmet = t.dependencies.filter(d => state.tasks.find(x => x.task === d)?.state !== 'VERIFIED')
      if (unmet.length > 0) return ignored(`${describe}: dependencies not verified yet (tasks ${unmet.join(', ')})`)
      t.attempt = event.attempt
      t.nextAttempt = event.attempt + 1
      t.node = event.node
      t.unverifiable = event.kind === 'unverifiable'
      t.selection = event.selection !== undefined ? { ...event.selection } : null
      t.assignedAt = at
      t.deadlineAt = event.deadlineAt ?? at + taskDeadlineMs(rules.deadline, t.computeUnits)
      t.startedAt = null
      t.completedAt = null
      t.verifiedAt = null
      move(t, 'ASSIGNED', at, transitions)
      setStatus(state, 'in-progress', at, transitions)
      break
    }
    case 'completed': {
      if (!live || t.state !== 'ASSIGNED') return ignored(`${describe}: completion of an attempt that is not live (task is ${t.state}, live attempt ${t.attempt ?? 'none'})`)
      if (event.node !== t.node) return ignored(`${describe}: completion by ${event.node}, but the attempt is assigned to ${t.node}`)
      if (event.outputs === null || typeof event.outputs !== 'object') throw badEvent('completed: outputs must be an object')
      const committedOnly = event.committedOnly === true && rules.verification === 'sampling'
      const needed = committedOnly ? [] : neededOutputs(state, t.task)
      const missing = needed.filter(n => typeof event.outputs[n] !== 'string')
      if (missing.length > 0) return ignored(`${describe}: completion lacks output${missing.length > 1 ? 's' : ''} ${missing.map(m => `'${m}'`).join(', ')}`)
      t.outputs = { ...event.outputs }
      t.outputRoot = event.outputRoot ?? null
      t.startedAt = event.startedAt ?? t.assignedAt
      t.completedAt = at
      move(t, 'COMPLETED', at, transitions)
      if (rules.verification === 'none') {
        move(t, 'VERIFIED', at, transitions, 'verification not required on this network')
        t.verifiedAt = at
      }
      break
    }
    case 'sampled': {
      if (rules.verification !== 'sampling') return ignored(`${describe}: sampling is not used on this network`)
      if (!live || t.state !== 'COMPLETED') return ignored(`${describe}: sampling decision for an attempt that is not awaiting one (task is ${t.state})`)
      if (event.sampled) move(t, 'PENDING_VERIFICATION', at, transitions, 'sampled for verification')
      else {
        move(t, 'VERIFIED', at, transitions, t.unverifiable === true ? 'unverifiable: no second node holds its dataset, so it was not sampled' : 'not sampled')
        t.verifiedAt = at
      }
      break
    }
    case 'verified': {
      if (!live || t.state !== 'PENDING_VERIFICATION') return ignored(`${describe}: verification outcome for an attempt that is not pending verification (task is ${t.state})`)
      t.verifier = null
      if (event.outcome === 'match') {
        if (event.outputs !== undefined) {
          const missing = neededOutputs(state, t.task).filter(n => typeof event.outputs![n] !== 'string')
          if (missing.length > 0) return ignored(`${describe}: verified outputs lack ${missing.map(m => `'${m}'`).join(', ')}`)
          t.outputs = { ...event.outputs }
          t.outputRoot = event.outputRoot ?? t.outputRoot
        }
        move(t, 'VERIFIED', at, transitions, event.reason ?? 're-execution matched')
        t.verifiedAt = at
      } else if (event.outcome === 'mismatch') {
        const reason = event.reason ?? 're-execution disagreed with the result'
        move(t, 'VERIFICATION_FAILED', at, transitions, reason)
        afterFailure(state, t, `verification failed: ${reason}`, at, rules, transitions)
      } else if (event.outcome === 'nondeterministic') {
        const reason = event.reason ?? 'three-way disagreement between asserter and verifiers'
        move(t, 'VERIFICATION_FAILED', at, transitions, reason)
        setStatus(state, 'failed', at, transitions, `task ${t.task} (${t.taskId}): the taskpack is nondeterministic (${reason}); nobody is slashed`)
      } else {
        throw badEvent(`verified: unknown outcome '${String((event as { outcome: unknown }).outcome)}'`)
      }
      break
    }
    case 'task-failed': {
      if (!live || t.state !== 'ASSIGNED') return ignored(`${describe}: failure report for an attempt that is not live (task is ${t.state})`)
      if (event.node !== t.node) return ignored(`${describe}: failure reported by ${event.node}, but the attempt is assigned to ${t.node}`)
      const reason = `run failed on the node: ${String(event.reason).slice(0, 500)}`
      move(t, 'FAILED', at, transitions, reason)
      afterFailure(state, t, reason, at, rules, transitions)
      break
    }
    case 'deadline': {
      if (t.verifier !== null && t.verifier.attempt === event.attempt) {
        if (at < t.verifier.deadlineAt) return ignored(`${describe}: verification deadline not reached (${t.verifier.deadlineAt})`)
        // the verifier did not deliver: another verifier may be assigned; the asserter is not at fault
        t.verifier = null
        return { state, transitions }
      }
      if (!live || t.state !== 'ASSIGNED') return ignored(`${describe}: deadline of an attempt that is not live (task is ${t.state})`)
      if (at < t.deadlineAt!) return ignored(`${describe}: deadline not reached (due at ${t.deadlineAt})`)
      const reason = typeof event.reason === 'string' && event.reason !== ''
        ? `run failed on the node: ${event.reason.slice(0, 500)}`
        : `deadline missed (${t.deadlineAt! - t.assignedAt!} ms)`
      move(t, 'FAILED', at, transitions, reason)
      afterFailure(state, t, reason, at, rules, transitions)
      break
    }
    default:
      throw badEvent(`unknown event type '${String((event as { type: unknown }).type)}'`)
  }
  refresh(state, at, transitions)
  return { state, transitions }
}

/** Names of a task's outputs that something reads (a later task or a model output). */
function neededOutputs (state: ExecutionState, task: number): string[] {
  const names = new Set<string>()
  for (const t of state.tasks) for (const s of Object.values(t.sources)) if (s.from === 'task-output' && s.task === task) names.add(s.name)
  for (const s of Object.values(state.outputSources)) if (s.from === 'task-output' && s.task === task) names.add(s.name)
  return [...names].sort()
}

export interface ReplayResult {
  state: ExecutionState
  transitions: Transition[]
  ignored: Array<{ index: number, reason: string }>
}

/** Rebuilds an execution from its event log; the first event must be its `requested` event. */
export function replay (model: ModelDefinition, events: readonly ExecutionEvent[], rules: ExecutionRules): ReplayResult {
  const first = events[0]
  if (first === undefined || first.type !== 'requested') throw new ExecutionError('ERR_EXECUTION_NOT_REQUESTED', 'an event log starts with the requested event')
  let state = createExecution(model, first, rules)
  const transitions: Transition[] = []
  const ignored: Array<{ index: number, reason: string }> = []
  for (let i = 1; i < events.length; i++) {
    const r = applyEvent(state, events[i]!, rules)
    state = r.state
    transitions.push(...r.transitions)
    if (r.ignored !== undefined) ignored.push({ index: i, reason: r.ignored })
  }
  return { state, transitions, ignored }
}

/**
 * Deadline events due at `now`: one per live primary attempt past its deadline and per live
 * verification past its own. The daemon appends them to the log (so replays see the same order);
 * it should first check the chain agrees (the program's `expire` is the final word).
 */
export function dueDeadlines (state: ExecutionState, now: number): Array<Extract<ExecutionEvent, { type: 'deadline' }>> {
  if (isTerminalStatus(state.status)) return []
  const out: Array<Extract<ExecutionEvent, { type: 'deadline' }>> = []
  for (const t of state.tasks) {
    if (t.state === 'ASSIGNED' && t.deadlineAt !== null && now >= t.deadlineAt) out.push({ type: 'deadline', at: now, taskId: t.taskId, attempt: t.attempt! })
    if (t.verifier !== null && now >= t.verifier.deadlineAt) out.push({ type: 'deadline', at: now, taskId: t.taskId, attempt: t.verifier.attempt })
  }
  return out
}

/** The earliest pending deadline (ms), for the daemon's timer; undefined when none. */
export function nextDeadline (state: ExecutionState): number | undefined {
  if (isTerminalStatus(state.status)) return undefined
  let next: number | undefined
  for (const t of state.tasks) {
    for (const d of [t.state === 'ASSIGNED' ? t.deadlineAt : null, t.verifier?.deadlineAt ?? null]) {
      if (d !== null && (next === undefined || d < next)) next = d
    }
  }
  return next
}

// ---- status for RPC ----------------------------------------------------------------------------

/** TaskExecutionStatus of the settlement spec, with string ids and DESIGN.md's task states. */
export interface TaskExecutionStatus {
  taskId: string
  task: number
  status: TaskState
  attempt: number | null
  assignedNode: string | null
  /** the live (or last) primary attempt is unverifiable: never sampled or slashed, paid less */
  unverifiable: boolean
  blacklist: string[]
  inputUris: Record<string, string | null>
  outputUris: UriMap
  startTime: number | null
  deadline: number | null
  completionTime: number | null
  failures: AttemptFailure[]
}

/** ModelExecutionStatus of the settlement spec, with string ids. */
export interface ModelExecutionStatus {
  id: string
  modelId: string
  requestor: string
  fee: string
  overallStatus: ExecutionStatus
  reason: string | null
  inputUris: UriMap
  outputUris: Record<string, string | null>
  readyTasks: string[]
  taskStatuses: TaskExecutionStatus[]
  startTime: number
  completionTime: number | null
}

export function executionStatus (s: ExecutionState): ModelExecutionStatus {
  return {
    id: s.executionId,
    modelId: s.modelId,
    requestor: s.requester,
    fee: s.fee,
    overallStatus: s.status,
    reason: s.reason,
    inputUris: { ...s.inputs },
    outputUris: { ...s.outputs },
    readyTasks: [...s.ready],
    taskStatuses: s.tasks.map(t => ({
      taskId: t.taskId,
      task: t.task,
      status: t.state,
      attempt: t.attempt,
      assignedNode: t.node,
      unverifiable: t.unverifiable === true,
      blacklist: [...t.blacklist],
      inputUris: { ...t.inputs },
      outputUris: { ...t.outputs },
      startTime: t.startedAt ?? t.assignedAt,
      deadline: t.state === 'ASSIGNED' ? t.deadlineAt : null,
      selection: t.selection === null ? null : { ...t.selection },
      completionTime: t.completedAt,
      failures: t.failures.map(f => ({ ...f }))
    })),
    startTime: s.requestedAt,
    completionTime: s.finishedAt
  }
}
