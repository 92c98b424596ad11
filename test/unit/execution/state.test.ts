import { describe, it, expect } from 'vitest'
import { validateModel, modelCid, type ModelDefinition } from '../../../protocols/model.js'
import {
  applyEvent, canTransition, checkRequestInputs, createExecution, defaultRules, dueDeadlines, executionStatus, nextDeadline,
  replay, taskDeadlineMs, DEADLINES, TASK_STATES, TASK_TRANSITIONS,
  type ExecutionEvent, type ExecutionRules, type ExecutionState, type TaskState, type Transition
} from '../../../protocols/execution/state.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'

const PACK = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const spec = (name: string) => ({ name, dimensions: ['n'], dtype: 'float32' as const })

/** Diamond: 1 reads x; 2 reads 1.a; 3 reads 1.a and 2.b; the model output y is 3.y. */
const model: ModelDefinition = validateModel({
  format: 'bitflow-model/1',
  name: 'diamond',
  description: 'three tasks',
  creator: 't',
  inputs: [spec('x')],
  outputs: [spec('y')],
  tasks: [
    { id: 1, description: 'one', taskpack: PACK, computeUnits: 250, vramRequirement: 0, inputs: [spec('in')], outputs: [spec('a')] },
    { id: 2, description: 'two', taskpack: PACK, computeUnits: 100, vramRequirement: 0, inputs: [spec('a_in')], outputs: [spec('b')] },
    { id: 3, description: 'three', taskpack: PACK, computeUnits: 1, vramRequirement: 0, inputs: [spec('p'), spec('q')], outputs: [spec('y')] }
  ],
  connections: [
    { sourceTaskId: 0, destinationTaskId: 1, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('x') },
    { sourceTaskId: 1, destinationTaskId: 2, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('a') },
    { sourceTaskId: 1, destinationTaskId: 3, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('a') },
    { sourceTaskId: 2, destinationTaskId: 3, sourceOutputIndex: 0, destInputIndex: 1, tensorSpec: spec('b') },
    { sourceTaskId: 3, destinationTaskId: 0, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('y') }
  ]
})
const MODEL = modelCid(model).toString()
const T1 = `${MODEL}/1`
const T2 = `${MODEL}/2`
const T3 = `${MODEL}/3`
const X = 'ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const uri = (s: string): string => `ipfs://bafkrei${s.padEnd(52, 'a')}`

const rules: ExecutionRules = defaultRules('local')
const requested: ExecutionEvent = { type: 'requested', at: 1000, executionId: 'exec-1', modelId: MODEL, requester: 'req', fee: '5000', requestSlot: 42, inputs: { x: X } }

function run (events: ExecutionEvent[], r: ExecutionRules = rules): { state: ExecutionState, transitions: Transition[], ignored: Array<{ index: number, reason: string }> } {
  return replay(model, [requested, ...events], r)
}

const assign = (taskId: string, attempt: number, node: string, at: number): ExecutionEvent => ({ type: 'assigned', at, taskId, attempt, node, kind: 'primary' })
const complete = (taskId: string, attempt: number, node: string, at: number, outputs: Record<string, string>): ExecutionEvent => ({ type: 'completed', at, taskId, attempt, node, outputs })
const task = (s: ExecutionState, id: string) => s.tasks.find(t => t.taskId === id)!

const happy: ExecutionEvent[] = [
  assign(T1, 0, 'n1', 2000),
  complete(T1, 0, 'n1', 3000, { a: uri('a') }),
  assign(T2, 0, 'n2', 3100),
  complete(T2, 0, 'n2', 4000, { b: uri('b') }),
  assign(T3, 0, 'n3', 4100),
  complete(T3, 0, 'n3', 5000, { y: uri('y') })
]

describe('task state machine', () => {
  it('allows exactly the transitions of DESIGN.md', () => {
    const allowed = new Set(Object.entries(TASK_TRANSITIONS).flatMap(([f, ts]) => ts.map(t => `${f}->${t}`)))
    expect([...allowed].sort()).toEqual([
      'ASSIGNED->COMPLETED', 'ASSIGNED->FAILED', 'COMPLETED->PENDING_VERIFICATION', 'COMPLETED->VERIFIED',
      'FAILED->UNASSIGNED', 'PENDING_VERIFICATION->VERIFICATION_FAILED', 'PENDING_VERIFICATION->VERIFIED',
      'UNASSIGNED->ASSIGNED', 'VERIFICATION_FAILED->UNASSIGNED'
    ])
    for (const f of TASK_STATES) for (const t of TASK_STATES) expect(canTransition(f, t)).toBe(allowed.has(`${f}->${t}`))
  })

  it('computes deadlines as base + per-100-units, rounded up like the program', () => {
    expect(taskDeadlineMs(DEADLINES.public, 0)).toBe(30_000)
    expect(taskDeadlineMs(DEADLINES.public, 100)).toBe(35_000)
    expect(taskDeadlineMs(DEADLINES.public, 101)).toBe(40_000)
    expect(taskDeadlineMs(DEADLINES.local, 250)).toBe(8_000)
    expect(() => taskDeadlineMs(DEADLINES.local, -1)).toThrow(ExecutionError)
  })
})

describe('execution reducer', () => {
  it('starts pending with only the root task ready and its input resolved', () => {
    const s = createExecution(model, requested as never, rules)
    expect(s.status).toBe('pending')
    expect(s.ready).toEqual([T1])
    expect(task(s, T1).inputs).toEqual({ in: X })
    expect(task(s, T3).inputs).toEqual({ p: null, q: null })
    expect(task(s, T3).dependencies).toEqual([1, 2])
    expect(s.outputs).toEqual({ y: null })
  })

  it('runs the DAG in dependency order to completion, wiring outputs into inputs', () => {
    const after1 = run(happy.slice(0, 2)).state
    expect(after1.status).toBe('in-progress')
    expect(task(after1, T1).state).toBe('VERIFIED')
    expect(after1.ready).toEqual([T2]) // task 3 also needs task 2
    expect(task(after1, T2).inputs).toEqual({ a_in: uri('a') })
    expect(task(after1, T3).inputs).toEqual({ p: uri('a'), q: null })

    const { state, transitions, ignored } = run(happy)
    expect(ignored).toEqual([])
    expect(state.status).toBe('completed')
    expect(state.finishedAt).toBe(5000)
    expect(state.startedAt).toBe(2000)
    expect(state.outputs).toEqual({ y: uri('y') })
    expect(state.ready).toEqual([])
    expect(task(state, T3).inputs).toEqual({ p: uri('a'), q: uri('b') })
    const t1 = transitions.filter(t => t.scope === 'task' && t.taskId === T1).map(t => t.scope === 'task' ? `${t.from}->${t.to}` : '')
    expect(t1).toEqual(['UNASSIGNED->ASSIGNED', 'ASSIGNED->COMPLETED', 'COMPLETED->VERIFIED'])
    expect(transitions.filter(t => t.scope === 'execution').map(t => t.to)).toEqual(['in-progress', 'completed'])
  })

  it('refuses to assign a task whose dependencies are not verified', () => {
    const r = run([assign(T2, 0, 'n2', 2000)])
    expect(r.ignored[0]!.reason).toMatch(/dependencies not verified/)
    expect(task(r.state, T2).state).toBe('UNASSIGNED')
    expect(r.state.status).toBe('pending')
  })

  it('fails a missed deadline, blacklists the node and makes the task ready again', () => {
    const assignedAt = 2000
    const due = assignedAt + taskDeadlineMs(rules.deadline, 250) // 5 s + 3 × 1 s
    const early = run([assign(T1, 0, 'n1', assignedAt), { type: 'deadline', at: due - 1, taskId: T1, attempt: 0 }])
    expect(early.ignored[0]!.reason).toMatch(/deadline not reached/)
    expect(task(early.state, T1).state).toBe('ASSIGNED')
    expect(nextDeadline(early.state)).toBe(due)
    expect(dueDeadlines(early.state, due - 1)).toEqual([])
    expect(dueDeadlines(early.state, due)).toEqual([{ type: 'deadline', at: due, taskId: T1, attempt: 0 }])

    const { state, transitions } = run([assign(T1, 0, 'n1', assignedAt), ...dueDeadlines(early.state, due)])
    const t = task(state, T1)
    expect(t.state).toBe('UNASSIGNED')
    expect(t.blacklist).toEqual(['n1'])
    expect(t.failures).toEqual([{ attempt: 0, node: 'n1', reason: 'deadline missed (8000 ms)', at: due }])
    expect(state.ready).toEqual([T1])
    expect(transitions.filter(x => x.scope === 'task').map(x => x.scope === 'task' ? x.to : '')).toEqual(['ASSIGNED', 'FAILED', 'UNASSIGNED'])

    // the blacklisted node cannot take it again; a stale attempt number is refused; the next attempt is 1
    const again = run([assign(T1, 0, 'n1', assignedAt), ...dueDeadlines(early.state, due), assign(T1, 1, 'n1', due + 1), assign(T1, 0, 'n2', due + 1), assign(T1, 1, 'n2', due + 2)])
    expect(again.ignored.map(i => i.reason)).toEqual([expect.stringMatching(/n1 is blacklisted/), expect.stringMatching(/stale attempt/)])
    expect(task(again.state, T1)).toMatchObject({ state: 'ASSIGNED', attempt: 1, node: 'n2', nextAttempt: 2 })
  })

  it('ignores a completion of a superseded attempt and one by another node', () => {
    const base = [assign(T1, 0, 'n1', 2000), { type: 'deadline', at: 20_000, taskId: T1, attempt: 0 } as ExecutionEvent, assign(T1, 1, 'n2', 20_001)]
    const r = run([...base, complete(T1, 0, 'n1', 20_002, { a: uri('a') }), complete(T1, 1, 'n9', 20_003, { a: uri('a') })])
    expect(r.ignored.map(i => i.reason)).toEqual([expect.stringMatching(/not live/), expect.stringMatching(/completion by n9/)])
    expect(task(r.state, T1).state).toBe('ASSIGNED')
  })

  it('ignores a completion that lacks an output a dependent needs', () => {
    const r = run([assign(T1, 0, 'n1', 2000), complete(T1, 0, 'n1', 3000, { other: uri('o') })])
    expect(r.ignored[0]!.reason).toMatch(/lacks output 'a'/)
    expect(task(r.state, T1).state).toBe('ASSIGNED')
  })

  it('bounds attempts: the last failure fails the execution with a clear reason', () => {
    const r2: ExecutionRules = { ...rules, maxAttempts: 2 }
    const { state } = run([
      assign(T1, 0, 'n1', 2000),
      { type: 'task-failed', at: 2500, taskId: T1, attempt: 0, node: 'n1', reason: 'exit code 1: ValueError' },
      assign(T1, 1, 'n2', 2600),
      { type: 'deadline', at: 60_000, taskId: T1, attempt: 1 },
      assign(T1, 2, 'n3', 60_001)
    ], r2)
    expect(state.status).toBe('failed')
    expect(state.reason).toBe(`task 1 (${T1}) failed 2 of 2 attempts: attempt 0 on n1: run failed on the node: exit code 1: ValueError; attempt 1 on n2: deadline missed (8000 ms)`)
    expect(task(state, T1).state).toBe('FAILED')
    expect(state.ready).toEqual([])
    expect(state.finishedAt).toBe(60_000)
    expect(executionStatus(state).overallStatus).toBe('failed')
  })

  it('goes through sampling and verification when the network samples', () => {
    const r: ExecutionRules = { ...rules, verification: 'sampling' }
    const a = run([assign(T1, 0, 'n1', 2000), complete(T1, 0, 'n1', 3000, { a: uri('a') })], r).state
    expect(task(a, T1).state).toBe('COMPLETED')
    expect(a.ready).toEqual([]) // dependents wait for verification

    const notSampled = run([assign(T1, 0, 'n1', 2000), complete(T1, 0, 'n1', 3000, { a: uri('a') }), { type: 'sampled', at: 3100, taskId: T1, attempt: 0, sampled: false }], r).state
    expect(task(notSampled, T1).state).toBe('VERIFIED')
    expect(notSampled.ready).toEqual([T2])

    const sampled: ExecutionEvent[] = [
      assign(T1, 0, 'n1', 2000), complete(T1, 0, 'n1', 3000, { a: uri('a') }), { type: 'sampled', at: 3100, taskId: T1, attempt: 0, sampled: true },
      { type: 'assigned', at: 3200, taskId: T1, attempt: 1, node: 'v1', kind: 'verification' }
    ]
    const pending = run(sampled, r).state
    expect(task(pending, T1)).toMatchObject({ state: 'PENDING_VERIFICATION', nextAttempt: 2, verifier: { attempt: 1, node: 'v1' } })
    expect(pending.ready).toEqual([])

    const matched = run([...sampled, { type: 'verified', at: 4000, taskId: T1, attempt: 0, outcome: 'match' }], r).state
    expect(task(matched, T1).state).toBe('VERIFIED')
    expect(matched.ready).toEqual([T2])

    const fraud = run([...sampled, { type: 'verified', at: 4000, taskId: T1, attempt: 0, outcome: 'mismatch', reason: 'y differs' }, assign(T1, 1, 'n2', 4100), assign(T1, 2, 'n2', 4100)], r)
    const t = task(fraud.state, T1)
    expect(fraud.transitions.filter(x => x.scope === 'task').map(x => x.scope === 'task' ? x.to : '')).toContain('VERIFICATION_FAILED')
    expect(t.blacklist).toEqual(['n1'])
    expect(fraud.ignored[0]!.reason).toMatch(/stale attempt/) // attempt 1 was the verifier's
    expect(t).toMatchObject({ state: 'ASSIGNED', attempt: 2, node: 'n2', outputs: {} })

    const split = run([...sampled, { type: 'verified', at: 4000, taskId: T1, attempt: 0, outcome: 'nondeterministic' }], r).state
    expect(split.status).toBe('failed')
    expect(split.reason).toMatch(/nondeterministic/)
  })

  it('records an unverifiable attempt: a primary attempt that is accepted without sampling and says so in the status', () => {
    const r: ExecutionRules = { ...rules, verification: 'sampling' }
    const events: ExecutionEvent[] = [
      { type: 'assigned', at: 2000, taskId: T1, attempt: 0, node: 'n1', kind: 'unverifiable' },
      complete(T1, 0, 'n1', 3000, { a: uri('a') }),
      { type: 'sampled', at: 3100, taskId: T1, attempt: 0, sampled: false }
    ]
    const { state, transitions } = run(events, r)
    expect(task(state, T1)).toMatchObject({ state: 'VERIFIED', node: 'n1', unverifiable: true })
    expect(state.ready).toEqual([T2])
    const toVerified = transitions.find(x => x.scope === 'task' && x.to === 'VERIFIED')
    expect(JSON.stringify(toVerified)).toMatch(/unverifiable/)
    const status = executionStatus(state).taskStatuses
    expect(status.find(t => t.taskId === T1)!.unverifiable).toBe(true)
    expect(status.find(t => t.taskId === T2)!.unverifiable).toBe(false)
    // a later ordinary attempt of the same task is verifiable again
    const again = run([
      { type: 'assigned', at: 2000, taskId: T1, attempt: 0, node: 'n1', kind: 'unverifiable' },
      { type: 'deadline', at: 20_000, taskId: T1, attempt: 0 },
      assign(T1, 1, 'n2', 20_100)
    ], r).state
    expect(task(again, T1)).toMatchObject({ state: 'ASSIGNED', node: 'n2', unverifiable: false })
  })

  it('lets another verifier take over when a verifier misses its deadline', () => {
    const r: ExecutionRules = { ...rules, verification: 'sampling' }
    const s = run([
      assign(T1, 0, 'n1', 2000), complete(T1, 0, 'n1', 3000, { a: uri('a') }), { type: 'sampled', at: 3100, taskId: T1, attempt: 0, sampled: true },
      { type: 'assigned', at: 3200, taskId: T1, attempt: 1, node: 'n1', kind: 'verification' },
      { type: 'assigned', at: 3200, taskId: T1, attempt: 1, node: 'v1', kind: 'verification' },
      { type: 'deadline', at: 3200 + 8000, taskId: T1, attempt: 1 },
      { type: 'assigned', at: 12_000, taskId: T1, attempt: 2, node: 'v2', kind: 'verification' }
    ], r)
    expect(s.ignored[0]!.reason).toMatch(/cannot verify its own/)
    expect(task(s.state, T1)).toMatchObject({ state: 'PENDING_VERIFICATION', verifier: { attempt: 2, node: 'v2' }, blacklist: [] })
  })

  it('cancels, after which nothing applies', () => {
    const { state, ignored } = run([assign(T1, 0, 'n1', 2000), { type: 'cancelled', at: 2500 }, complete(T1, 0, 'n1', 3000, { a: uri('a') })])
    expect(state.status).toBe('cancelled')
    expect(state.reason).toBe('cancelled by the requester')
    expect(state.ready).toEqual([])
    expect(ignored[0]!.reason).toBe('execution is already cancelled')
    const aborted = run([{ type: 'aborted', at: 2000, reason: 'no eligible node for task 1' }]).state
    expect(aborted).toMatchObject({ status: 'failed', reason: 'no eligible node for task 1' })
  })

  it('is pure and replayable: same log, same state; applyEvent does not modify its input', () => {
    const a = run(happy).state
    const b = run(happy).state
    expect(b).toEqual(a)
    const s0 = createExecution(model, requested as never, rules)
    const copy = structuredClone(s0)
    const r = applyEvent(s0, happy[0]!, rules)
    expect(s0).toEqual(copy)
    expect(r.state).not.toBe(s0)
    // a log with redundant entries (the same settlement seen from gossip and from the chain) replays to the same end
    const noisy = run(happy.flatMap(e => [e, e]))
    expect(noisy.state.status).toBe('completed')
    expect(noisy.state.outputs).toEqual(a.outputs)
    expect(noisy.ignored.length).toBe(happy.length)
  })

  it('rejects bad requests and malformed events with coded errors', () => {
    expect(checkRequestInputs(model, {})).toEqual(["missing input 'x'"])
    expect(checkRequestInputs(model, { x: X, z: X })).toEqual([expect.stringMatching(/unknown input 'z'/)])
    expect(checkRequestInputs(model, { x: 'http://evil' })).toEqual([expect.stringMatching(/invalid URI/)])
    const bad = (f: () => unknown, code: string): void => {
      try { f(); expect.unreachable() } catch (e) { expect((e as ExecutionError).code).toBe(code) }
    }
    bad(() => createExecution(model, { ...requested, inputs: {} } as never, rules), 'ERR_EXECUTION_BAD_EVENT')
    bad(() => createExecution(model, { ...requested, executionId: 'a b' } as never, rules), 'ERR_EXECUTION_BAD_ID')
    bad(() => replay(model, [happy[0]!], rules), 'ERR_EXECUTION_NOT_REQUESTED')
    bad(() => createExecution(model, requested as never, { ...rules, maxAttempts: 9 }), 'ERR_EXECUTION_BAD_TIMING')
    const s = createExecution(model, requested as never, rules)
    bad(() => applyEvent(s, { type: 'deadline', at: -1, taskId: T1, attempt: 0 }, rules), 'ERR_EXECUTION_BAD_EVENT')
    bad(() => applyEvent(s, { type: 'bogus', at: 1, taskId: T1, attempt: 0 } as never, rules), 'ERR_EXECUTION_BAD_EVENT')
  })

  it('reports the settlement-spec status shape with string ids', () => {
    const st = executionStatus(run(happy.slice(0, 3)).state)
    expect(st).toMatchObject({ id: 'exec-1', modelId: MODEL, requestor: 'req', fee: '5000', overallStatus: 'in-progress', readyTasks: [], startTime: 1000, completionTime: null })
    const ts = st.taskStatuses.map(t => [t.taskId, t.status as TaskState, t.assignedNode])
    expect(ts).toEqual([[T1, 'VERIFIED', 'n1'], [T2, 'ASSIGNED', 'n2'], [T3, 'UNASSIGNED', null]])
    expect(st.taskStatuses[1]).toMatchObject({ startTime: 3100, deadline: 3100 + 6000, inputUris: { a_in: uri('a') } })
    expect(st.taskStatuses[0]).toMatchObject({ completionTime: 3000, outputUris: { a: uri('a') } })
  })
})
