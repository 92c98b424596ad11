/**
 * Keeps every tracked execution in step with the chain, on every daemon (not only oracles): the
 * chain is the source of truth for assignments, expiries and the sampling decision, while outputs
 * travel in signed completions that are accepted only when the chain holds the revealed output root.
 *
 * Each step reads the task-state accounts of every unfinished execution in one batched call, and
 * derives the events the local state lacks:
 *  - an assignment settled on chain that this daemon did not see (gossip lost, or it was down);
 *  - an expired attempt (on chain FAILED after its deadline);
 *  - a completion whose reveal is on chain (held back until the chain shows it, then applied).
 */
import { PublicKey, type Connection } from '@solana/web3.js'
import {
  assignmentAddress, decodeAssignment, decodeNode, decodeTaskState, executionAddress, taskStateAddress,
  AssignmentStatus, NO_ATTEMPT, Sampling, TaskStatus, type TaskStateAccount
} from '../../programs/client/index.js'
import { outputRoot, type CompletionBody } from '../../protocols/execution/messages.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { isTerminalStatus, type TaskRecord } from '../../protocols/execution/state.js'
import type { Logger } from '../logger.js'
import type { SettlementService } from '../services/settlement.js'
import type { ExecutionService, TrackedExecution } from '../services/execution.js'
import { assignedKindOf, peerIdOfKey } from './keys.js'

const BATCH = 100

export interface WatcherDeps {
  executions: ExecutionService
  settlement: () => SettlementService
  programId: PublicKey
  log: Logger
  /** the chain shows `node` revealed an attempt whose signed completion this daemon lacks */
  missingCompletion?: (node: string, executionId: string) => void
}

/** The operator (peer id) of a node account, from the registry (refreshed once when unknown). */
export async function operatorPeerOf (settlement: SettlementService, nodeAccount: PublicKey): Promise<string> {
  const find = (): PublicKey | undefined => settlement.registry().find(e => e.address === nodeAccount.toBase58())?.node.operator
  let operator = find()
  if (operator === undefined) {
    const info = await settlement.connection?.getAccountInfo(nodeAccount, 'confirmed')
    if (info !== null && info !== undefined) operator = decodeNode(info.data).operator
  }
  if (operator === undefined) throw new Error(`node account ${nodeAccount.toBase58()} is not in the registry`)
  return peerIdOfKey(operator.toBytes())
}

export class ChainWatcher {
  readonly #deps: WatcherDeps
  /** completions waiting for the chain to show their reveal, by attempt key */
  readonly #completions = new Map<string, { body: CompletionBody, receivedAt: number }>()
  #busy = false

  constructor (deps: WatcherDeps) {
    this.#deps = deps
  }

  /** A signed completion from the topic: applied once the chain shows the same revealed output root. */
  offerCompletion (body: CompletionBody): void {
    this.#completions.set(`${body.executionId}|${body.taskId}|${body.attempt}`, { body, receivedAt: Date.now() })
    void this.step().catch(err => { this.#deps.log.debug({ err }, 'chain watch step failed') })
  }

  #connection (): Connection | undefined {
    return this.#deps.settlement().connection
  }

  #executionAddress (executionId: string): PublicKey | undefined {
    const config = this.#deps.settlement().configAddress
    return config !== undefined ? executionAddress(this.#deps.programId, config, executionKey(executionId))[0] : undefined
  }

  async step (): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      await this.#step()
    } finally {
      this.#busy = false
    }
  }

  async #step (): Promise<void> {
    const connection = this.#connection()
    if (connection === undefined) return
    const work: Array<{ tracked: TrackedExecution, task: TaskRecord, address: PublicKey }> = []
    for (const tracked of this.#deps.executions.list()) {
      if (isTerminalStatus(tracked.state.status)) continue
      const execution = this.#executionAddress(tracked.state.executionId)
      if (execution === undefined) return
      for (const task of tracked.state.tasks) {
        if (task.state === 'VERIFIED') continue
        work.push({ tracked, task, address: taskStateAddress(this.#deps.programId, execution, taskKey(task.taskId))[0] })
      }
    }
    for (let i = 0; i < work.length; i += BATCH) {
      const slice = work.slice(i, i + BATCH)
      const infos = await connection.getMultipleAccountsInfo(slice.map(w => w.address), 'confirmed')
      for (let j = 0; j < slice.length; j++) {
        const info = infos[j]
        if (info === null || info === undefined || !info.owner.equals(this.#deps.programId)) continue
        const { tracked, task } = slice[j]!
        try {
          await this.#reconcile(tracked, task, decodeTaskState(info.data))
        } catch (err) {
          this.#deps.log.debug({ err, executionId: tracked.state.executionId, taskId: task.taskId }, 'reconciling a task with the chain failed')
        }
      }
    }
    // completions of executions that are done (or unknown) are not kept forever
    const now = Date.now()
    for (const [key, c] of this.#completions) if (now - c.receivedAt > 10 * 60_000) this.#completions.delete(key)
  }

  async #assignment (executionId: string, taskId: string, attempt: number): Promise<ReturnType<typeof decodeAssignment> | undefined> {
    const execution = this.#executionAddress(executionId)!
    const info = await this.#connection()!.getAccountInfo(assignmentAddress(this.#deps.programId, execution, taskKey(taskId), attempt)[0], 'confirmed')
    if (info === null || !info.owner.equals(this.#deps.programId)) return undefined
    return decodeAssignment(info.data)
  }

  /** The signed completion offered for an attempt whose outputs the chain shows revealed (root matches). */
  #revealedCompletion (executionId: string, taskId: string, attempt: number, revealedRoot: Uint8Array): CompletionBody | undefined {
    const key = `${executionId}|${taskId}|${attempt}`
    const offered = this.#completions.get(key)
    if (offered === undefined) return undefined
    const root = outputRoot(offered.body.outputs)
    if (Buffer.from(revealedRoot).toString('hex') !== root || offered.body.outputRoot !== root) {
      this.#completions.delete(key)
      this.#deps.log.warn({ executionId, taskId, attempt, node: offered.body.node }, 'a completion does not match the output root revealed on chain: ignored')
      return undefined
    }
    return offered.body
  }

  /** The outputs an attempt revealed (from its signed completion, checked against the chain), if known. */
  revealedOutputs (executionId: string, taskId: string, attempt: number): CompletionBody | undefined {
    return this.#completions.get(`${executionId}|${taskId}|${attempt}`)?.body
  }

  async #reconcile (tracked: TrackedExecution, task: TaskRecord, chain: TaskStateAccount): Promise<void> {
    const { executions } = this.#deps
    const executionId = tracked.state.executionId
    const live = chain.primaryAttempt
    if (live === NO_ATTEMPT) return
    const now = Date.now()
    // an assignment this daemon has not applied yet
    if (task.state === 'UNASSIGNED' && live >= task.nextAttempt) {
      const a = await this.#assignment(executionId, task.taskId, live)
      if (a === undefined) return
      const node = await operatorPeerOf(this.#deps.settlement(), a.node)
      await executions.apply(executionId, { type: 'assigned', at: now, taskId: task.taskId, attempt: live, node, kind: assignedKindOf(a.kind), deadlineAt: Number(a.deadline) * 1000 })
      return
    }
    // this daemon missed the end of its current attempt (it was stopped, or the gossip was lost) while
    // the chain moved on to a later one: record that attempt's failure, and the next step applies the
    // newer assignment
    if (task.state === 'ASSIGNED' && task.attempt !== null && live > task.attempt) {
      const old = await this.#assignment(executionId, task.taskId, task.attempt)
      if (old !== undefined && old.status === AssignmentStatus.Failed) {
        await executions.apply(executionId, { type: 'deadline', at: Math.max(now, task.deadlineAt ?? 0), taskId: task.taskId, attempt: task.attempt, ...executions.failureNote(executionId, task.taskId, task.attempt) })
      }
      return
    }
    if (task.attempt !== live) return
    if (task.state === 'ASSIGNED') {
      if (chain.status === TaskStatus.Failed) {
        await executions.apply(executionId, { type: 'deadline', at: Math.max(now, task.deadlineAt ?? 0), taskId: task.taskId, attempt: live, ...executions.failureNote(executionId, task.taskId, live) })
        return
      }
      if (chain.sampling === Sampling.Sampled) {
        // committed and sampled: outputs stay private until the verifier has committed too
        await executions.apply(executionId, { type: 'completed', at: now, taskId: task.taskId, attempt: live, node: task.node!, outputs: {}, committedOnly: true })
        await executions.apply(executionId, { type: 'sampled', at: now, taskId: task.taskId, attempt: live, sampled: true })
        return
      }
      if (chain.status !== TaskStatus.Verified || (chain.sampling !== Sampling.Skipped && chain.sampling !== Sampling.Unverifiable)) return
      const a = await this.#assignment(executionId, task.taskId, live)
      if (a === undefined || a.status !== AssignmentStatus.Revealed) return
      const body = this.#revealedCompletion(executionId, task.taskId, live, a.outputRoot)
      if (body === undefined) { if (task.node !== null) this.#deps.missingCompletion?.(task.node, executionId); return }
      await executions.apply(executionId, { type: 'completed', at: now, taskId: task.taskId, attempt: live, node: body.node, outputs: body.outputs, outputRoot: body.outputRoot, startedAt: body.startedAtMs })
      await executions.apply(executionId, { type: 'sampled', at: now, taskId: task.taskId, attempt: live, sampled: false })
      return
    }
    if (task.state !== 'PENDING_VERIFICATION') return
    // a verifier settled on chain that this daemon has not applied yet
    if (task.verifier === null && chain.verifierAttempt !== NO_ATTEMPT && chain.status === TaskStatus.PendingVerification) {
      const v = await this.#assignment(executionId, task.taskId, chain.verifierAttempt)
      if (v === undefined) return
      const node = await operatorPeerOf(this.#deps.settlement(), v.node)
      await executions.apply(executionId, { type: 'assigned', at: now, taskId: task.taskId, attempt: chain.verifierAttempt, node, kind: 'verification', deadlineAt: Number(v.deadline) * 1000 })
      return
    }
    // the verifier's attempt expired: another verifier may be assigned
    if (task.verifier !== null && chain.verifierAttempt === NO_ATTEMPT && chain.status === TaskStatus.PendingVerification) {
      await executions.apply(executionId, { type: 'deadline', at: Math.max(now, task.verifier.deadlineAt), taskId: task.taskId, attempt: task.verifier.attempt })
      return
    }
    if (chain.status === TaskStatus.Verified) {
      const a = await this.#assignment(executionId, task.taskId, live)
      if (a === undefined || a.status !== AssignmentStatus.Revealed) return
      const body = this.#revealedCompletion(executionId, task.taskId, live, a.outputRoot)
      if (body === undefined) { if (task.node !== null) this.#deps.missingCompletion?.(task.node, executionId); return }
      await executions.apply(executionId, { type: 'verified', at: now, taskId: task.taskId, attempt: live, outcome: 'match', outputs: body.outputs, outputRoot: body.outputRoot, reason: 're-execution by a validator agreed' })
      return
    }
    if (chain.status === TaskStatus.VerificationFailed) {
      await executions.apply(executionId, { type: 'verified', at: now, taskId: task.taskId, attempt: live, outcome: 'mismatch', reason: 're-execution by a validator disagreed with the result' })
    }
  }
}
