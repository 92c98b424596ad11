import { createHash, randomBytes } from 'node:crypto'
import { Key } from 'interface-datastore'
import { Type } from '@sinclair/typebox'
import { PublicKey, type Connection } from '@solana/web3.js'
import {
  openExecution, cancelTasks, executionAddress, assignmentAddress, decodeAssignment, nodeAddress, MAX_TASKS
} from '../../programs/client/index.js'
import { associatedTokenAddress } from '../../programs/chain/spl.js'
import { validateModel, type ModelDefinition } from '../../protocols/model.js'
import {
  checkRequestInputs, createExecution, applyEvent, replay, executionStatus, defaultRules, isTerminalStatus,
  type ExecutionEvent, type ExecutionRules, type ExecutionState, type Transition, type RequestedEvent
} from '../../protocols/execution/state.js'
import {
  validateExecutionMessage, encodeExecutionMessage, EXECUTION_REQUEST_KIND, COMPLETION_KIND, FAILURE_KIND, ASSIGNMENT_NOTICE_KIND,
  type ExecutionMessage, type ExecutionRequestBody, type AssignmentNoticeBody
} from '../../protocols/execution/messages.js'
import { executionKey, isValidId, modelTaskId, taskKey } from '../../protocols/execution/ids.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import type { DaemonService, ServiceContext } from './service.js'
import type { SettlementService } from './settlement.js'
import type { ContentService } from '../content/service.js'
import { publicKeyOfPeer } from './liveness.js'
import { param } from '../rpc/registry.js'
import { RpcError, RpcErrorCode, invalidParams } from '../rpc/errors.js'
import { ModelExecutionStatusSchema, RequestExecutionResultSchema, ExecutionTransitionEventSchema } from '../rpc/types.js'
import { ExecutionLog, parseAmount, splitFee } from '../execution/requests.js'
import { operatorKeypair, sendTransaction, readExecution, ChainSendError } from '../execution/chain.js'
import { ExecutionCoordinator } from '../execution/coordinator.js'
import { ChainWatcher } from '../execution/watcher.js'
import { ExecutionSync } from '../execution/sync.js'
import { executionSyncProtocol } from '../../protocols/names.js'
import { NodeTaskRunner, type NodeAssignment } from '../execution/runner.js'
import { DisputeResolver } from '../execution/disputes.js'
import { assignedKindOf } from '../execution/keys.js'
import { EscrowCloser } from '../execution/closer.js'
import type { CommitteeService } from './committee.js'

/** How long a request may wait for the model definition before it is declared unknown. */
const MODEL_LOOKUP_MS = 8000
/** fallback for the slot notifications (a WebSocket that is down or reconnecting) */
const SLOT_POLL_MS = 250
const WATCH_MS = 1000
const SYNC_FIRST_MS = 3000
const SYNC_EVERY_MS = 20_000
/** a node whose revealed result lacks its completion is asked directly at most this often */
const ASK_NODE_EVERY_MS = 3000
/** finished executions are handed to peers catching up for this long */
const SYNC_FINISHED_MS = 10 * 60_000
const RAW_PREFIX = '/bitflow/execution-messages'

const messageDigest = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

export interface TrackedExecution {
  model: ModelDefinition
  events: ExecutionEvent[]
  state: ExecutionState
  /** the execution account on chain (base58) */
  account: string
}

export interface TransitionEvent {
  executionId: string
  transition: Transition
}

/** Messages of the execution topic other components (the oracle coordinator, the node runner) consume. */
export type ExecutionMessageListener = (msg: ExecutionMessage, from: string) => void

/**
 * Executions as this daemon sees them: requests it opened (escrow on chain, then gossip), requests
 * it learned from the execution topic and checked against the chain, and every event applied since,
 * kept as an append-only log in the datastore and replayed at start.
 *
 * RPC: bitflow_requestExecution, bitflow_getExecutionStatus, bitflow_cancelExecution; WS topic
 * `execution` streams every state transition.
 */
export class ExecutionService implements DaemonService {
  readonly name = 'execution'
  readonly rules: ExecutionRules
  readonly #ctx: ServiceContext
  readonly #log: ExecutionLog
  readonly #executions = new Map<string, TrackedExecution>()
  /** serializes event application per execution */
  readonly #queues = new Map<string, Promise<unknown>>()
  readonly #transitionListeners = new Set<(e: TransitionEvent) => void>()
  readonly #messageListeners = new Set<ExecutionMessageListener>()
  readonly #pendingRemote = new Set<string>()
  readonly #committee: Set<string>
  /** votes are validated (and relayed) by every daemon with settlement; only committee oracles vote and submit */
  readonly coordinator: ExecutionCoordinator | undefined
  /** disputes and slashing: committee oracles decide and slash; every daemon relays slash votes and answers bitflow_getSlashes */
  readonly disputes: DisputeResolver
  readonly #isOracle: boolean
  readonly #watcher: ChainWatcher | undefined
  readonly #closer: EscrowCloser | undefined
  readonly #runner: NodeTaskRunner | undefined
  /** failures nodes reported for their attempts, shown as the reason when the attempt expires */
  readonly #failureReports = new Map<string, string>()
  readonly #sync: ExecutionSync
  /** the signed messages of each execution as received (request first), kept to hand to peers catching up */
  readonly #raw = new Map<string, Map<string, Uint8Array>>()
  /** digests of every message in #raw */
  readonly #rawDigests = new Set<string>()
  #syncTimer: NodeJS.Timeout | undefined
  #slot = 0
  #slotTimer: NodeJS.Timeout | undefined
  #slotSeenAt = 0
  readonly #askedAt = new Map<string, number>()
  #slotSubscription: { connection: Connection, id: number } | undefined
  #watchTimer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    // with settlement, a completion is VERIFIED only through the on-chain sampling decision (and reveal)
    this.rules = defaultRules(ctx.preset.local ? 'local' : 'public', ctx.options.programId !== undefined ? { verification: 'sampling' } : {})
    this.#log = new ExecutionLog(ctx.datastore)
    this.#committee = new Set(ctx.genesis.committee.map(m => m.peerId))
    ctx.gossip.add<ExecutionMessage>({
      kind: 'execution',
      validate: (data, _from, nowMs) => this.#validate(data, nowMs, false),
      handle: (msg, from, data) => { this.#onMessage(msg, from, data) }
    })
    this.#sync = new ExecutionSync({
      libp2p: ctx.libp2p,
      protocol: executionSyncProtocol(ctx.options.network),
      log: ctx.log,
      snapshot: () => this.#snapshot(),
      ingest: (data, from) => {
        // a peer's answer repeats what this daemon already holds: skip those before any validation
        if (this.#rawDigests.has(messageDigest(data))) return
        // messages from the past: the chain checks (escrow, revealed roots) decide, not their age
        const v = this.#validate(data, Date.now(), true)
        if (v.result === 'accept') this.#onMessage(v.value, from, data)
      }
    })
    this.#isOracle = ctx.options.roles.includes('oracle') && this.#committee.has(ctx.identity.peerId.toString())
    if (ctx.options.programId !== undefined) {
      const coordinator = new ExecutionCoordinator(ctx, this)
      this.coordinator = coordinator
      ctx.services.get<CommitteeService>('committee').routeAssignmentVotes({
        validate: (data, from, nowMs) => coordinator.validateVote(data, from, nowMs),
        handle: vote => { if (this.#isOracle) coordinator.handleVote(vote) }
      })
      this.#watcher = new ChainWatcher({
        executions: this, settlement: () => this.#settlement(), programId: new PublicKey(ctx.options.programId), log: ctx.log,
        missingCompletion: (node, executionId) => { this.#askNode(node, executionId) }
      })
      this.#closer = new EscrowCloser({ ctx, executions: () => this.list(), settlement: () => this.#settlement(), programId: new PublicKey(ctx.options.programId) })
      if (ctx.options.roles.includes('node') || ctx.options.roles.includes('validator')) {
        this.#runner = new NodeTaskRunner({
          ctx,
          publishCompletion: async body => { await this.#publishOwn({ type: COMPLETION_KIND, body }) },
          publishFailure: async body => { await this.#publishOwn({ type: FAILURE_KIND, body }) },
          completionOf: (executionId, taskId, attempt) => this.#watcher?.revealedOutputs(executionId, taskId, attempt)
        })
        this.onTransition(e => {
          const tr = e.transition
          if (tr.scope === 'task' && tr.to === 'ASSIGNED' && tr.node === ctx.identity.peerId.toString()) this.#runAssigned(e.executionId, tr.taskId)
        })
      }
    }
    this.disputes = new DisputeResolver(ctx, this)
    this.#registerRpc()
  }

  /** Pulls a node's signed messages directly when the chain shows a result of it that gossip did not bring (at most every few seconds per node). */
  #askNode (node: string, executionId: string): void {
    const now = Date.now()
    if (node === this.#ctx.identity.peerId.toString() || now - (this.#askedAt.get(node) ?? 0) < ASK_NODE_EVERY_MS) return
    if (this.#askedAt.size > 1024) this.#askedAt.clear()
    this.#askedAt.set(node, now)
    this.#sync.pullFromPeer(node, { signal: this.#ctx.signal })
      .then(n => { this.#ctx.log.info({ node, executionId, messages: n }, 'asked a node directly for a completion revealed on chain that gossip did not bring') })
      .catch(err => { this.#ctx.log.debug({ err, node, executionId }, 'asking a node for its completion failed') })
  }

  get currentSlot (): number { return this.#slot }
  /** when this daemon learned of the current slot (ms since the epoch) */
  get currentSlotSeenAt (): number { return this.#slotSeenAt }

  #validate (data: Uint8Array, nowMs: number, past: boolean): ReturnType<typeof validateExecutionMessage> {
    return validateExecutionMessage(data, {
      genesisHash: this.#ctx.genesisHash,
      nowMs,
      clockWindowMs: past ? Number.MAX_SAFE_INTEGER : 30_000,
      // before the first slot read, nothing is "too old" and nothing is "ahead"
      currentSlot: this.#slot,
      maxRequestAgeSlots: this.#slot === 0 || past ? Number.MAX_SAFE_INTEGER : 2000,
      maxSlotsAhead: this.#slot === 0 ? Number.MAX_SAFE_INTEGER : 100,
      committee: this.#committee,
      publicKeyOf: publicKeyOfPeer,
      verify: ed25519Verify
    })
  }

  /** Keeps a signed message of a tracked execution (memory and datastore) for peers catching up. */
  #keepRaw (executionId: string, data: Uint8Array): void {
    const key = messageDigest(data)
    let m = this.#raw.get(executionId)
    if (m === undefined) { m = new Map(); this.#raw.set(executionId, m) }
    if (m.has(key) || m.size >= 256) return
    m.set(key, data)
    this.#rawDigests.add(key)
    const id = createHash('sha256').update(executionId).digest('hex')
    Promise.resolve(this.#ctx.datastore.put(new Key(`${RAW_PREFIX}/${id}/${m.size.toString().padStart(4, '0')}-${key.slice(0, 16)}`), data))
      .catch((err: unknown) => { this.#ctx.log.debug({ err }, 'keeping a signed execution message failed') })
  }

  /** Signed messages of unfinished (and recently finished) executions, requests first. */
  #snapshot (): Uint8Array[] {
    const out: Uint8Array[] = []
    const now = Date.now()
    for (const [executionId, m] of this.#raw) {
      const s = this.#executions.get(executionId)?.state
      if (s === undefined) continue
      // a daemon back from a restart also learns what finished while it was down
      if (isTerminalStatus(s.status) && (s.finishedAt === null || now - s.finishedAt > SYNC_FINISHED_MS)) continue
      out.push(...m.values())
    }
    return out
  }
  get(executionId: string): TrackedExecution | undefined { return this.#executions.get(executionId) }
  list (): TrackedExecution[] { return [...this.#executions.values()] }

  onTransition (listener: (e: TransitionEvent) => void): () => void {
    this.#transitionListeners.add(listener)
    return () => this.#transitionListeners.delete(listener)
  }

  onMessage (listener: ExecutionMessageListener): () => void {
    this.#messageListeners.add(listener)
    return () => this.#messageListeners.delete(listener)
  }

  async start (): Promise<void> {
    for await (const { key, value } of this.#ctx.datastore.query({ prefix: RAW_PREFIX })) {
      const v = this.#validate(value, Date.now(), true)
      if (v.result !== 'accept') continue
      const executionId = v.value.body.executionId
      const m = this.#raw.get(executionId) ?? new Map<string, Uint8Array>()
      const digest = messageDigest(value)
      m.set(digest, value)
      this.#rawDigests.add(digest)
      this.#raw.set(executionId, m)
    }
    const logs = await this.#log.loadAll()
    const content = this.#ctx.services.get<ContentService>('content')
    for (const [executionId, events] of logs) {
      const first = events[0] as RequestedEvent
      try {
        const { model } = await content.getModel(first.modelId, AbortSignal.timeout(MODEL_LOOKUP_MS))
        const m = validateModel(model)
        const r = replay(m, events, this.rules)
        this.#executions.set(executionId, { model: m, events, state: r.state, account: this.#accountOf(executionId) ?? '' })
      } catch (err) {
        this.#ctx.log.warn({ err, executionId }, 'could not replay an execution log')
      }
    }
    if (logs.size > 0) this.#ctx.log.info({ executions: this.#executions.size }, 'execution logs replayed')
    // slot notifications drive the coordinator; the poll covers a WebSocket that is down
    const onSlot = (slot: number): void => {
      if (slot <= this.#slot || this.#stopped) return
      this.#slot = slot
      this.#slotSeenAt = Date.now()
      if (this.#isOracle) this.coordinator?.kick()
    }
    const pollSlot = async (): Promise<void> => {
      const connection = this.#settlement().connection
      if (connection === undefined) return
      if (this.#slotSubscription === undefined) {
        this.#slotSubscription = { connection, id: connection.onSlotChange(info => { onSlot(info.slot) }) }
      }
      onSlot(await connection.getSlot('confirmed'))
    }
    await pollSlot().catch(() => {})
    this.#slotTimer = setInterval(() => { pollSlot().catch(() => {}) }, SLOT_POLL_MS)
    this.#slotTimer.unref()
    if (this.#isOracle) this.coordinator?.start()
    this.disputes.start()
    if (this.#watcher !== undefined) {
      const watcher = this.#watcher
      const closer = this.#closer
      this.#watchTimer = setInterval(() => {
        watcher.step().catch(err => { this.#ctx.log.debug({ err }, 'chain watch step failed') })
        closer?.step().catch(err => { this.#ctx.log.debug({ err }, 'escrow close step failed') })
      }, WATCH_MS)
      this.#watchTimer.unref()
    }
    // catch up from peers: executions requested while this daemon was down, completions it missed
    await this.#sync.start()
    const pull = (): void => {
      this.#sync.pull({ signal: this.#ctx.signal })
        .then(n => { if (n > 0) this.#ctx.log.debug({ messages: n }, 'execution sync pulled messages') })
        .catch(err => { this.#ctx.log.debug({ err }, 'execution sync failed') })
    }
    setTimeout(pull, SYNC_FIRST_MS).unref()
    this.#syncTimer = setInterval(pull, SYNC_EVERY_MS)
    this.#syncTimer.unref()
    // attempts committed before a restart are revealed; assigned ones run (the runner checks the chain first)
    void this.#runner?.resume().catch(err => { this.#ctx.log.warn({ err }, 'resuming committed attempts failed') })
    for (const tracked of this.#executions.values()) {
      for (const t of tracked.state.tasks) {
        if (t.state === 'ASSIGNED' && t.node === this.#ctx.identity.peerId.toString()) this.#runAssigned(tracked.state.executionId, t.taskId)
      }
    }
  }

  /** What the reducer records as the reason when an attempt this node reported as failed expires. */
  failureNote (executionId: string, taskId: string, attempt: number): { reason?: string } {
    const reason = this.#failureReports.get(`${executionId}|${taskId}|${attempt}`)
    return reason !== undefined ? { reason } : {}
  }

  #runAssigned (executionId: string, taskId: string): void {
    const runner = this.#runner
    const tracked = this.#executions.get(executionId)
    const t = tracked?.state.tasks.find(x => x.taskId === taskId)
    if (runner === undefined || tracked === undefined || t === undefined || t.attempt === null || t.deadlineAt === null) return
    const modelTask = tracked.model.tasks.find(x => x.id === t.task)!
    const inputs = Object.fromEntries(Object.entries(t.inputs).flatMap(([n, u]) => u !== null ? [[n, u]] : []))
    const assignment: NodeAssignment = {
      executionId, taskId, attempt: t.attempt, taskpack: modelTask.taskpack, inputs, outputs: modelTask.outputs.map(o => o.name),
      deadlineMs: t.deadlineAt,
      ...(modelTask.weightUri !== undefined ? { weightUri: modelTask.weightUri } : {}),
      ...(modelTask.params !== undefined ? { params: modelTask.params } : {})
    }
    void runner.run(assignment)
  }

  #runVerification (executionId: string, taskId: string): void {
    const runner = this.#runner
    const tracked = this.#executions.get(executionId)
    const t = tracked?.state.tasks.find(x => x.taskId === taskId)
    if (runner === undefined || tracked === undefined || t === undefined || t.verifier === null || t.attempt === null) return
    const modelTask = tracked.model.tasks.find(x => x.id === t.task)!
    const inputs = Object.fromEntries(Object.entries(t.inputs).flatMap(([n, u]) => u !== null ? [[n, u]] : []))
    void runner.verify({
      executionId, taskId, attempt: t.verifier.attempt, verifies: t.attempt, taskpack: modelTask.taskpack, inputs, outputs: modelTask.outputs.map(o => o.name),
      deadlineMs: t.verifier.deadlineAt,
      ...(modelTask.weightUri !== undefined ? { weightUri: modelTask.weightUri } : {}),
      ...(modelTask.params !== undefined ? { params: modelTask.params } : {})
    })
  }

  /** Publishes a message this daemon signs and delivers it to its own handlers too. */
  async #publishOwn (msg: ExecutionMessage): Promise<void> {
    const data = encodeExecutionMessage(msg, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    this.deliverLocal(msg, this.#ctx.identity.peerId.toString(), data)
    await this.#ctx.gossip.publish('execution', data)
  }

  async stop (): Promise<void> {
    this.#stopped = true
    this.coordinator?.stop()
    this.disputes.stop()
    clearInterval(this.#slotTimer)
    if (this.#slotSubscription !== undefined) {
      const { connection, id } = this.#slotSubscription
      this.#slotSubscription = undefined
      await connection.removeSlotChangeListener(id).catch(() => {})
    }
    clearInterval(this.#watchTimer)
    clearInterval(this.#syncTimer)
    await this.#sync.stop().catch(() => {})
    await this.#runner?.stop()
    this.#transitionListeners.clear()
    this.#messageListeners.clear()
  }

  #settlement (): SettlementService {
    return this.#ctx.services.get<SettlementService>('settlement')
  }

  #programId (): PublicKey | undefined {
    return this.#ctx.options.programId !== undefined ? new PublicKey(this.#ctx.options.programId) : undefined
  }

  #accountOf (executionId: string): string | undefined {
    const programId = this.#programId()
    const config = this.#settlement().configAddress
    if (programId === undefined || config === undefined) return undefined
    return executionAddress(programId, config, executionKey(executionId))[0].toBase58()
  }

  // ---- events ----

  /** Appends an event to the execution's log (datastore first) and applies it; serialized per execution. */
  async apply (executionId: string, event: ExecutionEvent): Promise<{ applied: boolean, ignored?: string }> {
    const run = async (): Promise<{ applied: boolean, ignored?: string }> => {
      const tracked = this.#executions.get(executionId)
      if (tracked === undefined) return { applied: false, ignored: `unknown execution ${executionId}` }
      const r = applyEvent(tracked.state, event, this.rules)
      if (r.ignored !== undefined) return { applied: false, ignored: r.ignored }
      await this.#log.append(executionId, event)
      tracked.events.push(event)
      tracked.state = r.state
      this.#emit(executionId, r.transitions)
      if (event.type === 'assigned' && event.kind === 'verification' && event.node === this.#ctx.identity.peerId.toString()) this.#runVerification(executionId, event.taskId)
      return { applied: true }
    }
    const prev = this.#queues.get(executionId) ?? Promise.resolve()
    const next = prev.then(run, run)
    this.#queues.set(executionId, next.catch(() => {}))
    return await next
  }

  /** Starts tracking an execution from its requested event (persisted first). */
  async #track (model: ModelDefinition, request: RequestedEvent, account: string): Promise<TrackedExecution> {
    const state = createExecution(model, request, this.rules)
    await this.#log.append(request.executionId, request)
    const tracked: TrackedExecution = { model, events: [request], state, account }
    this.#executions.set(request.executionId, tracked)
    this.#emit(request.executionId, [{ scope: 'execution', at: request.at, from: 'pending', to: 'pending', reason: 'requested' }])
    return tracked
  }

  #emit (executionId: string, transitions: Transition[]): void {
    for (const transition of transitions) {
      for (const l of this.#transitionListeners) {
        try { l({ executionId, transition }) } catch (err) { this.#ctx.log.warn({ err }, 'execution transition listener threw') }
      }
    }
  }

  // ---- gossip ----

  /** Delivers a message this daemon published to its own listeners (gossipsub does not echo it). */
  deliverLocal (msg: ExecutionMessage, from: string, data?: Uint8Array): void {
    this.#onMessage(msg, from, data)
  }

  #onMessage (msg: ExecutionMessage, from: string, data?: Uint8Array): void {
    if (this.#stopped) return
    // completions are kept for peers catching up (requests once the chain confirmed their escrow)
    if (data !== undefined && msg.type === COMPLETION_KIND && this.#executions.has(msg.body.executionId)) this.#keepRaw(msg.body.executionId, data)
    for (const l of this.#messageListeners) {
      try { l(msg, from) } catch (err) { this.#ctx.log.warn({ err }, 'execution message listener threw') }
    }
    switch (msg.type) {
      case EXECUTION_REQUEST_KIND:
        void this.#onRemoteRequest(msg.body, data).catch(err => { this.#ctx.log.debug({ err, executionId: msg.body.executionId }, 'execution request not taken') })
        break
      case COMPLETION_KIND:
        // accepted only once the chain shows the revealed output root of that attempt
        this.#watcher?.offerCompletion(msg.body)
        break
      case FAILURE_KIND: {
        // the chain has no failure report: the attempt fails when it expires, with this reason
        const b = msg.body
        const t = this.#executions.get(b.executionId)?.state.tasks.find(x => x.taskId === b.taskId)
        if (t !== undefined && t.attempt === b.attempt && t.node === b.node) {
          this.#failureReports.set(`${b.executionId}|${b.taskId}|${b.attempt}`, b.reason)
          this.#ctx.log.info({ executionId: b.executionId, taskId: b.taskId, attempt: b.attempt, node: b.node, reason: b.reason }, 'a node reported a failed run; the attempt is reassigned when it expires')
        }
        break
      }
      case ASSIGNMENT_NOTICE_KIND:
        // a hint: applied only when the chain holds that assignment (the node runner does its own check)
        void this.#onNotice(msg.body).catch(err => { this.#ctx.log.debug({ err, executionId: msg.body.executionId }, 'assignment notice not applied') })
        break
    }
  }

  async #onNotice (b: AssignmentNoticeBody): Promise<void> {
    const tracked = this.#executions.get(b.executionId)
    const t = tracked?.state.tasks.find(x => x.taskId === b.taskId)
    if (tracked === undefined || t === undefined || b.attempt < t.nextAttempt) return
    const programId = this.#programId()
    const connection = this.#settlement().connection
    const config = this.#settlement().configAddress
    const nodeKey = publicKeyOfPeer(b.node)
    if (programId === undefined || connection === undefined || config === undefined || nodeKey === undefined) return
    const execution = executionAddress(programId, config, executionKey(b.executionId))[0]
    const info = await connection.getAccountInfo(assignmentAddress(programId, execution, taskKey(b.taskId), b.attempt)[0], 'confirmed')
    if (info === null || !info.owner.equals(programId)) throw new Error('no such assignment on chain')
    const a = decodeAssignment(info.data)
    if (!a.node.equals(nodeAddress(programId, config, new PublicKey(nodeKey))[0])) throw new Error('the chain assigned another node')
    await this.apply(b.executionId, { type: 'assigned', at: Date.now(), taskId: b.taskId, attempt: b.attempt, node: b.node, kind: assignedKindOf(a.kind), deadlineAt: Number(a.deadline) * 1000 })
  }

  /** A request announced by another daemon: taken only when the chain holds the escrow it claims. */
  async #onRemoteRequest (b: ExecutionRequestBody, data?: Uint8Array): Promise<void> {
    if (this.#executions.has(b.executionId) || this.#pendingRemote.has(b.executionId)) return
    this.#pendingRemote.add(b.executionId)
    try {
      const settlement = this.#settlement()
      const programId = this.#programId()
      const connection = settlement.connection
      const account = this.#accountOf(b.executionId)
      if (programId === undefined || connection === undefined || account === undefined) return
      const onChain = await readExecution(connection, programId, new PublicKey(account))
      if (onChain === undefined) throw new Error(`no execution account ${account} on chain`)
      const requesterKey = publicKeyOfPeer(b.requester)
      if (requesterKey === undefined || !onChain.requester.equals(new PublicKey(requesterKey))) throw new Error('the on-chain requester is not the announced one')
      if (onChain.requestSlot !== BigInt(b.requestSlot)) throw new Error(`request slot ${b.requestSlot} differs from the chain's ${onChain.requestSlot}`)
      // top-ups for sampled tasks only ever add to the escrow
      if (onChain.deposited < BigInt(b.fee)) throw new Error(`fee ${b.fee} is more than the escrow ${onChain.deposited}`)
      const { model } = await this.#ctx.services.get<ContentService>('content').getModel(b.modelId, AbortSignal.timeout(MODEL_LOOKUP_MS))
      const m = validateModel(model)
      const keys = new Set(onChain.tasks.map(t => Buffer.from(t.taskId).toString('hex')))
      if (keys.size !== m.tasks.length || m.tasks.some(t => !keys.has(Buffer.from(taskKey(modelTaskId(b.modelId, t.id))).toString('hex')))) {
        throw new Error('the on-chain tasks are not the model\'s tasks')
      }
      if (this.#executions.has(b.executionId)) return
      if (data !== undefined) this.#keepRaw(b.executionId, data)
      await this.#track(m, { type: 'requested', at: b.timestampMs, executionId: b.executionId, modelId: b.modelId, requester: b.requester, fee: b.fee, requestSlot: b.requestSlot, inputs: b.inputs }, account)
    } finally {
      this.#pendingRemote.delete(b.executionId)
    }
  }

  // ---- requests ----

  async requestExecution (p: { modelId: string, inputs: Record<string, string>, maxFee: unknown, executionId?: string }, signal: AbortSignal): Promise<{ executionId: string, account: string, requestSlot: number, pricePerTask: string, escrowed: string, signature: string }> {
    const settlement = this.#settlement()
    const programId = this.#programId()
    if (programId === undefined || !settlement.enabled) throw new RpcError(RpcErrorCode.Unavailable, 'settlement is not configured on this daemon (--program-id): executions need the chain for their escrow')
    if (settlement.config === undefined) await settlement.refresh().catch(() => {})
    const config = settlement.config
    const configAddress = settlement.configAddress
    const connection = settlement.connection
    if (config === undefined || configAddress === undefined || connection === undefined) throw new RpcError(RpcErrorCode.Unavailable, 'the settlement config is not readable yet; try again')

    // 1. model
    let model: ModelDefinition
    try {
      const got = await this.#ctx.services.get<ContentService>('content').getModel(p.modelId, AbortSignal.any([signal, AbortSignal.timeout(MODEL_LOOKUP_MS)]))
      model = validateModel(got.model)
    } catch (err) {
      throw new RpcError(RpcErrorCode.NotFound, `unknown model '${p.modelId}': ${(err as Error).message}`, { code: 'ERR_EXECUTION_UNKNOWN_MODEL', modelId: p.modelId })
    }
    if (model.tasks.length > MAX_TASKS) throw invalidParams(`model ${p.modelId} has ${model.tasks.length} tasks; an execution holds at most ${MAX_TASKS}`)
    // 2. inputs
    const problems = checkRequestInputs(model, p.inputs)
    if (problems.length > 0) throw new RpcError(RpcErrorCode.InvalidParams, `invalid params: inputs do not fit model ${p.modelId}: ${problems.join('; ')}`, { code: 'ERR_EXECUTION_BAD_INPUTS', problems })
    // 3. fee
    const maxFee = parseAmount(p.maxFee)
    if (maxFee === undefined) throw invalidParams('maxFee must be a decimal integer amount of stake-mint base units')
    const split = splitFee(config.params, model.tasks.length, maxFee)
    if (split === undefined) {
      const need = splitFee(config.params, model.tasks.length, 1n << 63n)
      const minimum = need?.minimum ?? 0n
      throw new RpcError(RpcErrorCode.InvalidParams, `invalid params: maxFee ${maxFee} is below the minimum fee for this model: ${minimum} (${model.tasks.length} task(s) at the network minimum of ${config.params.minFee} each, plus expected verification)`, { code: 'ERR_EXECUTION_FEE_TOO_LOW', minimum: minimum.toString() })
    }
    // 4. id
    const executionId = p.executionId ?? `x-${randomBytes(16).toString('hex')}`
    if (!isValidId(executionId)) throw invalidParams('executionId must be 1..128 characters of [A-Za-z0-9._:/@-]')
    if (this.#executions.has(executionId)) throw invalidParams(`execution ${executionId} exists already`)
    const executionKeyBytes = executionKey(executionId)
    const account = executionAddress(programId, configAddress, executionKeyBytes)[0]
    if (await connection.getAccountInfo(account, 'confirmed') !== null) throw invalidParams(`execution ${executionId} exists on chain already`)

    // 5. funds, then the escrow
    const operator = operatorKeypair(this.#ctx.identity)
    const requesterToken = associatedTokenAddress(operator.publicKey, config.stakeMint)
    const balance = await connection.getTokenAccountBalance(requesterToken, 'confirmed').then(r => BigInt(r.value.amount), () => 0n)
    if (balance < split.escrow) {
      throw new RpcError(RpcErrorCode.Unavailable, `this daemon's operator ${operator.publicKey.toBase58()} holds ${balance} stake-mint base units; the escrow needs ${split.escrow}`, { code: 'ERR_EXECUTION_INSUFFICIENT_FUNDS', balance: balance.toString(), needed: split.escrow.toString() })
    }
    const tasks = [...model.tasks].sort((a, b) => a.id - b.id).map(t => ({ taskId: taskKey(modelTaskId(p.modelId, t.id)), price: split.price, computeUnits: t.computeUnits }))
    let sent: { signature: string, slot: number }
    try {
      sent = await sendTransaction(connection, [openExecution({ programId, config: configAddress, requester: operator.publicKey, requesterToken, stakeMint: config.stakeMint, executionId: executionKeyBytes, tasks, execution: account })], operator)
    } catch (err) {
      const logs = err instanceof ChainSendError ? err.logs : undefined
      throw new RpcError(RpcErrorCode.InternalError, `opening the execution on chain failed: ${(err as Error).message}`, { code: 'ERR_EXECUTION_ESCROW', ...(logs !== undefined ? { logs } : {}) })
    }
    const onChain = await readExecution(connection, programId, account)
    if (onChain === undefined) throw new RpcError(RpcErrorCode.InternalError, `execution ${executionId} was opened (${sent.signature}) but its account is not readable`)
    const requestSlot = Number(onChain.requestSlot)
    const request: RequestedEvent = {
      type: 'requested', at: Date.now(), executionId, modelId: p.modelId, requester: this.#ctx.identity.peerId.toString(),
      fee: onChain.deposited.toString(), requestSlot, inputs: { ...p.inputs }
    }
    await this.#track(model, request, account.toBase58())
    // 6. gossip (the chain is the source of truth: a lost announcement is recovered from it)
    const body: ExecutionRequestBody = { v: 1, executionId, modelId: p.modelId, inputs: { ...p.inputs }, requester: request.requester, fee: request.fee, requestSlot, timestampMs: request.at }
    const announcement = encodeExecutionMessage({ type: EXECUTION_REQUEST_KIND, body }, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    this.#keepRaw(executionId, announcement)
    await this.#ctx.gossip.publish('execution', announcement)
      .catch(err => { this.#ctx.log.warn({ err, executionId }, 'announcing the execution request failed') })
    this.#ctx.log.info({ executionId, modelId: p.modelId, escrowed: request.fee, requestSlot }, 'execution requested')
    return { executionId, account: account.toBase58(), requestSlot, pricePerTask: split.price.toString(), escrowed: request.fee, signature: sent.signature }
  }

  status (executionId: string): Record<string, unknown> {
    const tracked = this.#executions.get(executionId)
    if (tracked === undefined) throw new RpcError(RpcErrorCode.NotFound, `unknown execution '${executionId}'`)
    const base = executionStatus(tracked.state)
    const s = tracked.state
    // why a task has no assignment: its dependencies from the state; the rest as this oracle's coordinator sees it
    const taskStatuses = base.taskStatuses.map(t => {
      const task = s.tasks.find(x => x.taskId === t.taskId)!
      let waiting: string | null = null
      if (!isTerminalStatus(s.status)) {
        if (s.ready.includes(t.taskId) || (task.state === 'PENDING_VERIFICATION' && task.verifier === null)) {
          waiting = this.coordinator?.waitingReason(executionId, t.taskId) ?? (this.#isOracle ? 'not looked at by the committee yet' : 'waiting for the committee (ask an oracle\'s daemon for details)')
        } else if (task.state === 'UNASSIGNED') {
          const open = task.dependencies.filter(d => s.tasks.find(x => x.task === d)?.state !== 'VERIFIED')
          if (open.length > 0) waiting = `waiting for task${open.length > 1 ? 's' : ''} ${open.join(', ')} to be verified`
        }
      }
      return { ...t, waiting }
    })
    return { ...base, taskStatuses, requestSlot: tracked.state.requestSlot, account: tracked.account === '' ? null : tracked.account }
  }

  /** Cancels an execution this daemon requested: refunds the tasks not assigned yet, then records the cancellation. */
  async cancelExecution (executionId: string, reason: string | undefined): Promise<{ executionId: string, refundedTasks: number, signature: string | null, status: string }> {
    const tracked = this.#executions.get(executionId)
    if (tracked === undefined) throw new RpcError(RpcErrorCode.NotFound, `unknown execution '${executionId}'`)
    if (tracked.state.requester !== this.#ctx.identity.peerId.toString()) throw new RpcError(RpcErrorCode.Unavailable, `execution ${executionId} was requested by ${tracked.state.requester}; only its requester's daemon can cancel it`)
    if (isTerminalStatus(tracked.state.status)) throw invalidParams(`execution ${executionId} is already ${tracked.state.status}`)
    const settlement = this.#settlement()
    const programId = this.#programId()
    const connection = settlement.connection
    const config = settlement.config
    const configAddress = settlement.configAddress
    if (programId === undefined || connection === undefined || config === undefined || configAddress === undefined) throw new RpcError(RpcErrorCode.Unavailable, 'settlement is not available')
    const indices = tracked.state.tasks.flatMap((t, i) => t.state === 'UNASSIGNED' ? [i] : [])
    let signature: string | null = null
    if (indices.length > 0) {
      const operator = operatorKeypair(this.#ctx.identity)
      const onChain = await readExecution(connection, programId, new PublicKey(tracked.account))
      if (onChain === undefined) throw new RpcError(RpcErrorCode.InternalError, `execution account ${tracked.account} is not readable`)
      try {
        signature = (await sendTransaction(connection, [cancelTasks({ programId, config: configAddress, requester: operator.publicKey, execution: new PublicKey(tracked.account), refundTo: onChain.refundTo, taskIndices: indices })], operator)).signature
      } catch (err) {
        throw new RpcError(RpcErrorCode.InternalError, `cancelling on chain failed: ${(err as Error).message}`, { code: 'ERR_EXECUTION_CANCEL', ...(err instanceof ChainSendError && err.logs !== undefined ? { logs: err.logs } : {}) })
      }
    }
    await this.apply(executionId, { type: 'cancelled', at: Date.now(), reason: reason ?? 'cancelled by the requester' })
    return { executionId, refundedTasks: indices.length, signature, status: this.#executions.get(executionId)!.state.status }
  }

  #registerRpc (): void {
    const UriMapSchema = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.String(), { maxProperties: 64 })
    this.#ctx.registry.add({
      name: 'bitflow_requestExecution',
      summary: 'Requests an execution of a registered model: validates it, escrows the fee on chain (recording the request slot), announces it and returns its id',
      params: [
        param('request', Type.Object({
          modelId: Type.String({ description: 'the model id (CID)' }),
          inputs: UriMapSchema,
          maxFee: Type.Union([Type.String({ pattern: '^[0-9]{1,20}$' }), Type.Integer({ minimum: 0 })], { description: 'most stake-mint base units to escrow' }),
          executionId: Type.Optional(Type.String({ description: 'default: random' }))
        }, { additionalProperties: false }))
      ],
      result: { name: 'execution', schema: RequestExecutionResultSchema },
      mutating: true,
      handler: async (p, ctx) => {
        const r = p.request as { modelId: string, inputs: Record<string, string>, maxFee: unknown, executionId?: string }
        return await this.requestExecution(r, ctx.signal)
      }
    })
    this.#ctx.registry.add({
      name: 'bitflow_getExecutionStatus',
      summary: 'An execution\'s status with every task\'s state, assigned node, input and output URIs and times',
      params: [param('executionId', Type.String())],
      result: { name: 'status', schema: ModelExecutionStatusSchema },
      mutating: false,
      handler: p => this.status(p.executionId as string)
    })
    this.#ctx.registry.add({
      name: 'bitflow_cancelExecution',
      summary: 'Cancels an execution this daemon requested; tasks not yet assigned are refunded on chain',
      params: [param('executionId', Type.String()), param('reason', Type.String({ maxLength: 500 }), { required: false })],
      result: { name: 'cancelled', schema: Type.Object({ executionId: Type.String(), refundedTasks: Type.Integer(), signature: Type.Union([Type.String(), Type.Null()]), status: Type.String() }) },
      mutating: true,
      handler: async p => await this.cancelExecution(p.executionId as string, p.reason as string | undefined)
    })
    this.#ctx.hub.addTopic({
      name: 'execution',
      description: 'every execution state transition (optionally of one execution)',
      params: Type.Object({ executionId: Type.Optional(Type.String()) }, { additionalProperties: false }),
      event: ExecutionTransitionEventSchema,
      attach: (params, emit) => this.onTransition(e => {
        if (params.executionId !== undefined && params.executionId !== e.executionId) return
        emit({ executionId: e.executionId, ...e.transition })
      })
    })
  }
}
