/**
 * The oracle side of execution (issue 7, step 2): for every ready task of every tracked execution,
 * derive the attempt's seed from the chain (SlotHashes at trigger slot + K, exactly as the settlement
 * program does), run the deterministic selection over the latest certified liveness round and the
 * on-chain registry, sign the assignment as a vote on the committee topic, collect the votes, and
 * let the scheduled submitter settle a quorum on chain (Ed25519 instruction + assign). Every oracle
 * watches the chain for the settled assignment and applies it to its execution state; the submitter
 * then announces it to the nodes (assignment-notice on the execution topic).
 *
 * The same oracles expire attempts whose deadline passed, assign verifications of sampled tasks to
 * validators, and refresh a task's seed on chain when no quorum formed while it was usable.
 *
 * Members select from the newest round certified two rounds before they vote; members that still
 * disagree (a round boundary between their votes, or one restarted) converge one ballot later on
 * the newest round voted that they all hold.
 */
import { PublicKey } from '@solana/web3.js'
import {
  assign, assignmentAddress, assignmentDigest, attemptSeed, blacklistHash, canonicalBlacklist, decodeAssignment, decodeTaskState,
  decodeExecution, ed25519Instruction, executionAddress, expire, refreshSeed, SEED_STALE_SLOTS, nodeAddress, taskStateAddress, AssignmentKind, AssignmentStatus, NodeStatus, type ExecutionAccount
} from '../../programs/client/index.js'
import { datasetVerifiers, selectNodes, type Candidate } from '../../protocols/execution/selection.js'
import { VoteCollector, attemptKey, submitSchedule } from '../../protocols/execution/votes.js'
import {
  withDigest, encodeAssignmentVote, encodeExecutionMessage, validateAssignmentVote, ASSIGNMENT_NOTICE_KIND, ASSIGNMENT_ROLE, MAX_RANKED,
  type AssignmentDigestFn, type AssignmentVote, type AssignmentVoteBody
} from '../../protocols/execution/messages.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { isTerminalStatus, type AssignedKind, type TaskRecord } from '../../protocols/execution/state.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import type { Verdict } from '../../protocols/validation.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { CommitteeService } from '../services/committee.js'
import type { ExecutionService, TrackedExecution } from '../services/execution.js'
import { publicKeyOfPeer } from '../services/liveness.js'
import { operatorKeypair, readExecution, sendTransaction, slotHashIn, SLOT_HASHES_SYSVAR, type SlotHashEntry } from './chain.js'
import { assignedKindOf, peerIdOfKey } from './keys.js'

/** a vote expires this many slots after its seed slot (per ballot) */
export const EXPIRY_WINDOW_SLOTS = 150
/** ballots per seed: a seed's ballots are ballotBase(seed slot) + 0 .. BALLOTS_PER_SEED - 1 */
export const BALLOTS_PER_SEED = 16
/** the program can check a seed only while its slot is among the last 512: no vote outlives that */
const SEED_USABLE_SLOTS = 480

export function ballotBase (seedSlot: number): number {
  return (seedSlot % 4096) * BALLOTS_PER_SEED
}

/** A ballot's expiry slot: deterministic, so every member signs the same digest. */
export function expiryOf (seedSlot: number, ballot: number): number {
  const index = ballot - ballotBase(seedSlot)
  return seedSlot + Math.min(EXPIRY_WINDOW_SLOTS * (index + 1), SEED_USABLE_SLOTS)
}
/** primary plus backups in a vote */
export const RANKED = 3
/** fallback step period; steps run on every slot notification and vote anyway */
const TICK_MS = 250
/** finished executions' bookkeeping is dropped about once a minute */
const PRUNE_EVERY_TICKS = 240
/** how often an unsettled ballot is checked for expiry, a split, or a moved trigger slot */
const RECHECK_MS = 1000
/** a ballot this close to its expiry is replaced rather than submitted */
const EXPIRY_MARGIN_SLOTS = 10
/** the chain compares whole seconds of its own clock: expire a little after the deadline */
const EXPIRE_GRACE_MS = 1200
const TAKEOVER_MS = 1500

const SLOT_HASHES_KEY = new PublicKey(SLOT_HASHES_SYSVAR)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export { peerIdOfKey }

interface OwnVote { ballot: number, body: AssignmentVoteBody, checkedAt: number }

export class ExecutionCoordinator {
  readonly #ctx: ServiceContext
  readonly #executions: ExecutionService
  readonly #self: string
  readonly #members: string[]
  #collector: VoteCollector | undefined
  readonly #own = new Map<string, OwnVote>()
  readonly #quorumAt = new Map<string, number>()
  readonly #lastSubmit = new Map<string, number>()
  readonly #settled = new Set<string>()
  readonly #accounts = new Map<string, ExecutionAccount>()
  readonly #reported = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #scheduled = false
  /** tasks with a step running (key: execution|task), and whether another was asked for meanwhile */
  readonly #stepping = new Map<string, boolean>()
  readonly #inFlight = new Set<string>()
  #planCache: { slot: number, round: number, before: Map<string, Map<string, number>> } | undefined
  /** why each ready task (execution|task) has no assignment yet */
  readonly #why = new Map<string, string>()
  /** settled assignments by attempt key, for the announcement */
  readonly #announcements = new Map<string, { node: string, kind: AssignedKind, deadlineMs: number, assignedSlot: number }>()
  /** the latest seed slot (and its SlotHashes entry, once it exists) read per attempt key */
  readonly #seedSlots = new Map<string, { seedSlot: bigint, slotHash: SlotHashEntry | undefined, readAt: number }>()

  constructor (ctx: ServiceContext, executions: ExecutionService) {
    this.#ctx = ctx
    this.#executions = executions
    this.#self = ctx.identity.peerId.toString()
    this.#members = ctx.genesis.committee.map(m => m.peerId)
  }

  get #settlement (): SettlementService { return this.#ctx.services.get<SettlementService>('settlement') }
  get #committee (): CommitteeService { return this.#ctx.services.get<CommitteeService>('committee') }
  get #programId (): PublicKey { return new PublicKey(this.#ctx.options.programId!) }

  #collectorOf (): VoteCollector | undefined {
    const threshold = this.#settlement.config?.threshold
    if (threshold === undefined || this.#members.length === 0) return undefined
    if (this.#collector === undefined || this.#collector.threshold !== threshold) this.#collector = new VoteCollector(this.#members, Math.min(threshold, this.#members.length))
    return this.#collector
  }

  /** Why a ready task has no assignment yet, as this oracle sees it (for the execution status). */
  waitingReason (executionId: string, taskId: string): string | undefined {
    return this.#why.get(`${executionId}|${taskId}`)
  }

  #wait (executionId: string, taskId: string, why: string): void {
    if (this.#why.size > 10_000) this.#why.clear()
    this.#why.set(`${executionId}|${taskId}`, why)
  }

  digestOf: AssignmentDigestFn = f => assignmentDigest({
    ...f,
    programId: this.#programId,
    genesisHash: Buffer.from(this.#ctx.genesisHash, 'hex'),
    blacklistHash: blacklistHash(canonicalBlacklist(f.blacklist))
  })

  /** The committee-topic validator for assignment votes (routed here by the committee service). */
  validateVote (data: Uint8Array, _from: string, _nowMs: number): Verdict<AssignmentVote> {
    return validateAssignmentVote(data, {
      genesisHash: this.#ctx.genesisHash,
      committee: new Set(this.#members),
      committeeEpoch: this.#settlement.config?.committeeEpoch ?? 0n,
      currentSlot: this.#executions.currentSlot,
      maxExpiryAheadSlots: EXPIRY_WINDOW_SLOTS * 8,
      publicKeyOf: publicKeyOfPeer,
      verify: ed25519Verify,
      digestOf: this.digestOf
    })
  }

  handleVote (vote: AssignmentVote): void {
    const r = this.#collectorOf()?.add(vote)
    if (r === 'equivocation') this.#ctx.log.warn({ oracle: vote.body.oracle, executionId: vote.body.executionId, taskId: vote.body.taskId }, 'oracle equivocated on an assignment vote')
    // the vote may complete a quorum this oracle is first to submit
    else this.kick()
  }

  start (): void {
    let ticks = 0
    this.#timer = setInterval(() => {
      this.kick()
      if (++ticks % PRUNE_EVERY_TICKS === 0) this.#prune()
    }, TICK_MS)
    this.#timer.unref()
  }

  /** Drops the per-attempt bookkeeping of executions that ended (or are no longer tracked): a long-running oracle would otherwise keep it forever. */
  #prune (): void {
    const ended = (key: string): boolean => {
      const executionId = key.replace(/^(expire|refresh):/, '').split('|')[0]!
      const tracked = this.#executions.get(executionId)
      return tracked === undefined || isTerminalStatus(tracked.state.status)
    }
    for (const m of [this.#own, this.#quorumAt, this.#lastSubmit, this.#seedSlots, this.#why, this.#announcements]) {
      for (const key of m.keys()) if (ended(key)) m.delete(key)
    }
    for (const key of this.#settled) if (ended(key)) this.#settled.delete(key)
    for (const key of this.#accounts.keys()) if (ended(key)) this.#accounts.delete(key)
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Steps every task now (a new slot, a vote, an assignment on chain): the interval is only a
   * fallback, so an assignment waits for no poll period. Tasks step independently: a task whose
   * previous step is still reading the chain steps again right after it, and never holds up the
   * others.
   */
  kick (): void {
    if (this.#timer === undefined || this.#scheduled) return
    // never synchronously: a step must not re-enter itself without the event loop turning
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (this.#timer === undefined) return
      try { this.#launch() } catch (err) { this.#ctx.log.warn({ err }, 'execution coordinator step failed') }
    })
  }

  /**
   * Runs a chain transaction's send-and-confirm off the step, at most one per key at a time, when it
   * is this oracle's turn to send `key`.
   */
  #background (key: string, run: () => Promise<void>, failure: string): void {
    if (this.#inFlight.has(key) || !this.#myTurn(key)) return
    this.#inFlight.add(key)
    run().catch(err => { this.#ctx.log.debug({ err, key }, failure) }).finally(() => {
      this.#inFlight.delete(key)
      this.kick()
    })
  }

  /** Starts a step for every task that wants one; returns the steps started. */
  #launch (): Array<Promise<void>> {
    const connection = this.#settlement.connection
    const config = this.#settlement.config
    if (connection === undefined || config === undefined) return []
    const started: Array<Promise<void>> = []
    for (const tracked of this.#executions.list()) {
      const s = tracked.state
      if (s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled') continue
      for (const t of s.tasks) {
        // a verifier that does not commit in time is expired too, or its task would wait for it forever
        const v = t.state === 'PENDING_VERIFICATION' ? t.verifier : null
        const due = t.state === 'ASSIGNED' && t.attempt !== null && t.deadlineAt !== null
          ? { attempt: t.attempt, deadlineAt: t.deadlineAt }
          : v !== null ? { attempt: v.attempt, deadlineAt: v.deadlineAt } : undefined
        if (due === undefined || Date.now() < due.deadlineAt + EXPIRE_GRACE_MS) continue
        this.#background(`expire:${attemptKey(s.executionId, t.taskId, due.attempt)}`, () => this.#maybeExpire(tracked, t.taskId, due.attempt), 'expiring an attempt failed')
      }
      // ready tasks get a primary assignment; sampled tasks without a live verifier get a verification
      const wanted = [...s.ready, ...s.tasks.filter(x => x.state === 'PENDING_VERIFICATION' && x.verifier === null).map(x => x.taskId)]
      for (const taskId of wanted) {
        const key = `${s.executionId}|${taskId}`
        if (this.#stepping.has(key)) { this.#stepping.set(key, true); continue }
        this.#stepping.set(key, false)
        const step = this.#stepTask(tracked, taskId).finally(() => {
          const again = this.#stepping.get(key) === true
          this.#stepping.delete(key)
          if (again) this.kick()
        })
        started.push(step)
      }
    }
    return started
  }

  /** One step of every task, awaited (tests and tools; the daemon steps through `kick`). */
  async tick (): Promise<void> {
    await Promise.all(this.#launch())
  }

  async #stepTask (tracked: TrackedExecution, taskId: string): Promise<void> {
    const s = tracked.state
    const t = s.tasks.find(x => x.taskId === taskId)
    if (t === undefined) return
    const key = attemptKey(s.executionId, taskId, t.nextAttempt)
    try {
      if (await this.#checkSettled(tracked, taskId, t.nextAttempt)) return
      const own = this.#own.get(key)
      if (own === undefined) await this.#vote(tracked, taskId, 0)
      // a split shows once the votes are in: after the first ballot of a seed the next follows at
      // once (members that straddled a round boundary); later splits wait for the recheck, so that
      // members whose views differ for longer do not burn through the seed's ballots in a second
      else if (Date.now() - own.checkedAt >= RECHECK_MS || (own.ballot === ballotBase(own.body.seedSlot) && this.#collectorOf()?.tally(s.executionId, taskId, t.nextAttempt, own.ballot).status === 'split')) {
        own.checkedAt = Date.now()
        const stale = await this.#staleBallot(tracked, taskId, own)
        if (stale !== undefined) {
          this.#ctx.log.debug({ executionId: s.executionId, taskId, attempt: t.nextAttempt, ballot: own.ballot, why: stale }, 'voting in the next ballot')
          await this.#vote(tracked, taskId, own.ballot + 1)
        }
      }
      this.#maybeSubmit(tracked, taskId, t.nextAttempt)
    } catch (err) {
      if (!this.#reported.has(key + (err as Error).message)) {
        this.#reported.add(key + (err as Error).message)
        this.#ctx.log.warn({ err, executionId: s.executionId, taskId }, 'assignment step failed')
      }
    }
  }

  async #executionAccount (tracked: TrackedExecution): Promise<ExecutionAccount | undefined> {
    const cached = this.#accounts.get(tracked.state.executionId)
    if (cached !== undefined) return cached
    const configAddress = this.#settlement.configAddress!
    const account = executionAddress(this.#programId, configAddress, executionKey(tracked.state.executionId))[0]
    const e = await readExecution(this.#settlement.connection!, this.#programId, account)
    if (e !== undefined) this.#accounts.set(tracked.state.executionId, e)
    return e
  }

  /**
   * The slot the attempt's seed derives from, as the program computes it: the task's trigger slot
   * once the task has a state account, else the execution's ready slot (read fresh: it moves when
   * a task of the execution becomes VERIFIED). With `withSlotHashes`, the SlotHashes data of the
   * same moment comes along in the same request (one round trip on the assignment's critical path).
   */
  async #triggerSlot (tracked: TrackedExecution, taskId: string, withSlotHashes = false): Promise<{ trigger: bigint | undefined, slotHashes?: Uint8Array }> {
    const connection = this.#settlement.connection!
    const execution = executionAddress(this.#programId, this.#settlement.configAddress!, executionKey(tracked.state.executionId))[0]
    const keys = [taskStateAddress(this.#programId, execution, taskKey(taskId))[0], execution, ...(withSlotHashes ? [SLOT_HASHES_KEY] : [])]
    const [state, exec, hashes] = await connection.getMultipleAccountsInfo(keys, 'confirmed')
    const slotHashes = hashes !== null && hashes !== undefined ? hashes.data : undefined
    if (state !== null && state !== undefined) return { trigger: decodeTaskState(state.data).triggerSlot, slotHashes }
    if (exec === null || exec === undefined || !exec.owner.equals(this.#programId)) return { trigger: undefined, slotHashes }
    try { return { trigger: decodeExecution(exec.data).readySlot, slotHashes } } catch { return { trigger: undefined, slotHashes } }
  }

  /** Why this oracle's unsettled ballot cannot settle any more, or undefined while it still can. */
  async #staleBallot (tracked: TrackedExecution, taskId: string, own: OwnVote): Promise<string | undefined> {
    const b = own.body
    if (this.#executions.currentSlot + EXPIRY_MARGIN_SLOTS >= b.expirySlot) return 'expired'
    if (this.#collectorOf()?.tally(b.executionId, b.taskId, b.attempt, own.ballot).status === 'split') return 'split'
    const base = ballotBase(b.seedSlot)
    if ((this.#collectorOf()?.ballots(b.executionId, b.taskId, b.attempt) ?? []).some(x => x > own.ballot && x < base + BALLOTS_PER_SEED)) return 'other members voted in a later ballot'
    const round = this.#chooseRound(b.executionId, b.taskId, b.attempt, b.seedSlot)
    if (round !== undefined && round.round !== b.livenessRound && this.#collectorOf()?.quorum(b.executionId, b.taskId, b.attempt) === undefined) return `members selected from liveness round ${round.round}`
    const { trigger } = await this.#triggerSlot(tracked, taskId)
    const config = this.#settlement.config
    if (trigger !== undefined && config !== undefined && Number(trigger) + config.params.seedDelaySlots !== b.seedSlot) return 'trigger slot moved'
    return undefined
  }

  /** Computes this oracle's selection for the task's next attempt and publishes its vote in `ballot`. */
  async #vote (tracked: TrackedExecution, taskId: string, requestedBallot: number): Promise<void> {
    let ballot = requestedBallot
    const config = this.#settlement.config!
    const s = tracked.state
    const t = s.tasks.find(x => x.taskId === taskId)!
    const attempt = t.nextAttempt
    const execution = executionAddress(this.#programId, this.#settlement.configAddress!, executionKey(s.executionId))[0]
    const key = attemptKey(s.executionId, taskId, attempt)
    // a trigger slot only ever moves later: while the last seed slot read is ahead, nothing to read
    const current = this.#executions.currentSlot
    const known = this.#seedSlots.get(key)
    if (known !== undefined && BigInt(current) <= known.seedSlot) { this.#wait(s.executionId, taskId, `waiting for the seed slot ${known.seedSlot} (now ${current})`); return }
    // a seed read within the recheck period is reused: a task waiting for a free node retries its
    // selection every slot, and must not re-read the chain every slot
    let seedSlot: bigint
    let slotHash: SlotHashEntry | undefined
    if (known?.slotHash !== undefined && Date.now() - known.readAt < RECHECK_MS) {
      seedSlot = known.seedSlot
      slotHash = known.slotHash
    } else {
      const { trigger, slotHashes } = await this.#triggerSlot(tracked, taskId, true)
      if (trigger === undefined) { this.#wait(s.executionId, taskId, 'the execution account is not readable on chain yet'); return }
      seedSlot = trigger + BigInt(config.params.seedDelaySlots)
      slotHash = slotHashes !== undefined && BigInt(current) > seedSlot ? slotHashIn(slotHashes, seedSlot) : undefined
      this.#seedSlots.set(key, { seedSlot, slotHash, readAt: Date.now() })
    }
    if (BigInt(current) <= seedSlot) { this.#wait(s.executionId, taskId, `waiting for the seed slot ${seedSlot} (now ${current})`); return }
    if (BigInt(current) > seedSlot + BigInt(SEED_STALE_SLOTS)) {
      // nothing settled while the seed was usable (too few oracles up?): move the trigger slot on
      this.#wait(s.executionId, taskId, `no quorum while seed slot ${seedSlot} was usable (too few oracles up?): the seed is being refreshed on chain`)
      this.#background(`refresh:${attemptKey(s.executionId, taskId, attempt)}`, () => this.#maybeRefresh(tracked, taskId, attempt), 'refreshing the seed failed')
      return
    }
    // Ballots belong to a seed (a refreshed seed opens a fresh range, so no member equivocates across
    // seeds) and follow the slot clock within it, so an oracle that restarted or lagged lands in the
    // ballot the others use without having seen their votes; a split or a round change moves
    // everyone one further, and members follow the highest ballot they see.
    const base = ballotBase(Number(seedSlot))
    const inRange = (b: number): boolean => b >= base && b < base + BALLOTS_PER_SEED
    const seen = (this.#collectorOf()?.ballots(s.executionId, taskId, attempt) ?? []).filter(inRange)
    const slotIndex = Math.floor((current - Number(seedSlot)) / EXPIRY_WINDOW_SLOTS)
    ballot = Math.min(base + BALLOTS_PER_SEED - 1, Math.max(inRange(ballot) ? ballot : base, base + slotIndex, ...seen))
    if (slotHash === undefined) { this.#wait(s.executionId, taskId, `the SlotHashes entry of slot ${seedSlot} is not readable`); return }
    const seed = attemptSeed({ genesisHash: Buffer.from(this.#ctx.genesisHash, 'hex'), executionId: executionKey(s.executionId), taskId: taskKey(taskId), attempt, slot: seedSlot, slotHash: slotHash.hash })
    const round = this.#chooseRound(s.executionId, taskId, attempt, Number(seedSlot))
    if (round === undefined) { this.#wait(s.executionId, taskId, 'no certified liveness round yet'); return }
    const onChain = await this.#executionAccount(tracked)
    const entry = onChain?.tasks.find(x => hex(x.taskId) === hex(taskKey(taskId)))
    if (entry === undefined) return
    const verification = t.state === 'PENDING_VERIFICATION'
    // tasks ahead of this one in the committee's order take the free slots first (see #reserved)
    const reserved = await this.#reserved(tracked, t, round)
    const { selection, blacklist, candidates, datasets } = this.#draw(tracked, t, seed, round, entry.price, reserved)
    if (selection.ranked.length === 0) {
      const summary = Object.entries(selection.excluded).map(([p, r]) => `${p}: ${r}`).join('; ')
      this.#wait(s.executionId, taskId, `no eligible ${verification ? 'validator' : 'node'} in liveness round ${round.round}${summary !== '' ? ` (${summary})` : ' (no registered candidates)'}`)
      const k = `none:${attemptKey(s.executionId, taskId, attempt)}:${round.round}`
      if (!this.#reported.has(k)) {
        this.#reported.add(k)
        const reasons = Object.values(selection.excluded)
        const waiting = reasons.some(r => r.startsWith('busy') || r === 'no free task slot')
        // waiting for a busy node is normal under load; nobody eligible at all is what an operator must hear
        this.#ctx.log[waiting ? 'debug' : 'warn']({ executionId: s.executionId, taskId, kind: verification ? 'verification' : 'primary', excluded: selection.excluded },
          waiting ? 'the task waits for a free task slot' : verification ? 'no eligible validator for a sampled task' : 'no eligible node for a ready task')
      }
      return
    }
    // a dataset:// task that no other validator holds the dataset for can never be re-executed: it is
    // assigned as unverifiable (never sampled, never slashed, paid less), from the same round every
    // member draws from, so members agree on the kind as they agree on the node
    let kind: AssignedKind = verification ? 'verification' : 'primary'
    if (!verification && datasets.length > 0 &&
      datasetVerifiers(candidates, { taskId, datasets }, selection.ranked[0]!, new Set(blacklist), config.params.minStake).length === 0) kind = 'unverifiable'
    const body = withDigest({
      v: 1, oracle: this.#self, committeeEpoch: config.committeeEpoch.toString(), executionId: s.executionId, taskId, attempt, ballot,
      kind, node: selection.ranked[0]!, blacklist, seedSlot: Number(seedSlot), seed: hex(seed),
      livenessRound: round.round, computeUnits: t.computeUnits, expirySlot: expiryOf(Number(seedSlot), ballot),
      selection: { ranked: selection.ranked, eligible: selection.eligible.length }
    }, publicKeyOfPeer, this.digestOf)
    const data = encodeAssignmentVote(body, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    this.#wait(s.executionId, taskId, `voted for ${body.node} in ballot ${ballot} (seed slot ${body.seedSlot}, liveness round ${body.livenessRound}); waiting for a quorum of the committee`)
    this.#own.set(attemptKey(s.executionId, taskId, attempt), { ballot, body, checkedAt: Date.now() })
    const own = this.validateVote(data, this.#self, Date.now())
    if (own.result === 'accept') this.handleVote(own.value)
    else this.#ctx.log.warn({ reason: own.reason }, 'own assignment vote does not validate')
    await this.#ctx.gossip.publish('committee', data)
    this.#ctx.log.debug({ executionId: s.executionId, taskId, attempt, ballot, node: body.node, seedSlot: body.seedSlot, livenessRound: body.livenessRound, eligible: selection.eligible.length, excluded: selection.excluded, slot: current, slotAgeMs: Date.now() - this.#executions.currentSlotSeenAt }, 'assignment vote published')
  }

  /**
   * The deterministic draw for a task's next attempt over a certified round: the on-chain registry
   * as candidates (specialization per task id), validators only for a verification (never the
   * asserter), accused parties and nodes without a free slot (open assignments, plus `reserved` by
   * tasks ahead) left out.
   */
  #draw (tracked: TrackedExecution, t: TaskRecord, seed: Uint8Array, round: NonNullable<ReturnType<CommitteeService['latestCertified']>>, price: bigint, reserved: Map<string, number>, open = this.#openAssignments()): { selection: ReturnType<typeof selectNodes>, blacklist: string[], candidates: Candidate[], datasets: string[] } {
    const config = this.#settlement.config!
    const taskId = t.taskId
    const modelTask = tracked.model.tasks.find(x => x.id === t.task)!
    // on chain a node declares the task ids it takes (the program checks it at assignment)
    const keyHex = hex(taskKey(taskId))
    const candidates: Candidate[] = this.#settlement.registry().map(r => {
      const peerId = peerIdOfKey(r.node.operator.toBytes())
      return {
        peerId,
        publicKey: r.node.operator.toBytes(),
        liveness: round.table.find(e => e.peerId === peerId),
        registration: {
          stake: r.node.stake,
          specializations: new Set(r.node.specializations.some(x => hex(x) === keyHex) ? [taskId] : []),
          slashed: r.node.status !== NodeStatus.Active,
          paymentsInFlight: r.node.paymentsInFlight
        }
      }
    })
    const datasets = Object.values(t.inputs).flatMap(u => u !== null && u.startsWith('dataset://') ? [u.slice('dataset://'.length)] : [])
    // a verification goes to a validator other than the asserter (DESIGN.md, Proof of Sampling)
    const verification = t.state === 'PENDING_VERIFICATION'
    const blacklist = verification && t.node !== null ? [...new Set([...t.blacklist, t.node])].sort() : [...t.blacklist]
    // parties found at fault in an unsettled dispute get no more work, before the chain marks them slashed
    const accused = this.#executions.disputes?.accusedPeers() ?? new Set<string>()
    const pool = (verification ? candidates.filter(c => c.liveness?.roles?.includes('validator') === true) : candidates.filter(c => c.liveness?.roles === undefined || c.liveness.roles.includes('node')))
      .filter(c => !accused.has(c.peerId))
    const payment = verification ? price * BigInt(config.params.validatorRewardBps) / 10_000n : price
    const busy = this.#busyPeers(round.table, reserved, open)
    const selection = selectNodes(pool, { taskId, vramBytes: modelTask.vramRequirement, gpu: 'optional', datasets, payment },
      seed, new Set(blacklist), { minStake: config.params.minStake, minStakeRatio: config.params.minStakeRatioBps / 10_000, busy }, Math.min(RANKED, MAX_RANKED))
    return { selection, blacklist, candidates, datasets }
  }

  /**
   * Slots taken by the tasks ahead of `task` in the committee's order (request slot, execution id,
   * task id) that wait for an assignment with a known seed: each takes the node its own draw picks,
   * in that order. Every member computes the same reservations from the same chain state, so a burst
   * of ready tasks fills the free slots once instead of every task drawing the same idle node. The
   * plan is computed once per slot and liveness round.
   */
  async #reserved (tracked: TrackedExecution, task: TaskRecord, round: NonNullable<ReturnType<CommitteeService['latestCertified']>>): Promise<Map<string, number>> {
    const slot = this.#executions.currentSlot
    if (this.#planCache?.slot !== slot || this.#planCache.round !== round.round) {
      this.#planCache = { slot, round: round.round, before: await this.#plan(round) }
    }
    const own = this.#planCache.before.get(`${tracked.state.executionId}|${task.taskId}`)
    if (own !== undefined) return own
    // not in the plan (its seed was read after the plan was made): behind every planned task
    return new Map(this.#planCache.before.get('') ?? [])
  }

  /** For every waiting task with a known seed, the reservations of the tasks ahead of it ('' = after all). */
  async #plan (round: NonNullable<ReturnType<CommitteeService['latestCertified']>>): Promise<Map<string, Map<string, number>>> {
    const waiting: Array<{ tracked: TrackedExecution, t: TaskRecord, seed: Uint8Array }> = []
    for (const x of this.#executions.list()) {
      const st = x.state
      if (isTerminalStatus(st.status)) continue
      for (const t of st.tasks) {
        if (!(st.ready.includes(t.taskId) || (t.state === 'PENDING_VERIFICATION' && t.verifier === null))) continue
        const known = this.#seedSlots.get(attemptKey(st.executionId, t.taskId, t.nextAttempt))
        if (known?.slotHash === undefined) continue
        waiting.push({ tracked: x, t, seed: attemptSeed({ genesisHash: Buffer.from(this.#ctx.genesisHash, 'hex'), executionId: executionKey(st.executionId), taskId: taskKey(t.taskId), attempt: t.nextAttempt, slot: known.seedSlot, slotHash: known.slotHash.hash }) })
      }
    }
    const cmp = (a: { tracked: TrackedExecution, t: TaskRecord }, b: { tracked: TrackedExecution, t: TaskRecord }): number =>
      a.tracked.state.requestSlot !== b.tracked.state.requestSlot
        ? a.tracked.state.requestSlot - b.tracked.state.requestSlot
        : a.tracked.state.executionId !== b.tracked.state.executionId
          ? (a.tracked.state.executionId < b.tracked.state.executionId ? -1 : 1)
          : (a.t.taskId < b.t.taskId ? -1 : a.t.taskId > b.t.taskId ? 1 : 0)
    waiting.sort(cmp)
    const before = new Map<string, Map<string, number>>()
    const reserved = new Map<string, number>()
    const open = this.#openAssignments()
    for (const w of waiting) {
      before.set(`${w.tracked.state.executionId}|${w.t.taskId}`, new Map(reserved))
      const onChain = await this.#executionAccount(w.tracked)
      const entry = onChain?.tasks.find(x => hex(x.taskId) === hex(taskKey(w.t.taskId)))
      if (entry === undefined) continue
      const pick = this.#draw(w.tracked, w.t, w.seed, round, entry.price, reserved, open).selection.ranked[0]
      if (pick !== undefined) reserved.set(pick, (reserved.get(pick) ?? 0) + 1)
    }
    before.set('', new Map(reserved))
    return before
  }

  /** Open assignments per peer: primary attempts assigned and not completed, verifications assigned and not revealed. */
  #openAssignments (): Map<string, number> {
    const open = new Map<string, number>()
    const add = (peer: string): void => { open.set(peer, (open.get(peer) ?? 0) + 1) }
    for (const tracked of this.#executions.list()) {
      if (isTerminalStatus(tracked.state.status)) continue
      for (const t of tracked.state.tasks) {
        if (t.state === 'ASSIGNED' && t.node !== null) add(t.node)
        if (t.state === 'PENDING_VERIFICATION' && t.verifier !== null) add(t.verifier.node)
      }
    }
    return open
  }

  /**
   * Peers whose task slots (as their certified heartbeat declares them) all hold open assignments
   * (plus the slots `reserved` by tasks ahead). Counted
   * from this oracle's execution states, which follow the chain; members that count differently for
   * a moment split their votes and meet again in the next ballot.
   */
  #busyPeers (table: ReadonlyArray<{ peerId: string, capacity: { taskSlots: number } }>, reserved: ReadonlyMap<string, number>, openCounts: ReadonlyMap<string, number>): Set<string> {
    const open = new Map<string, number>(openCounts)
    for (const [peer, n] of reserved) open.set(peer, (open.get(peer) ?? 0) + n)
    const busy = new Set<string>()
    for (const e of table) if ((open.get(e.peerId) ?? 0) >= Math.max(1, e.capacity.taskSlots)) busy.add(e.peerId)
    return busy
  }

  /**
   * Expires an attempt whose deadline passed without a commitment (anyone may; the committee does it
   * in submitter order so one transaction usually suffices). The chain watcher applies the result.
   */
  async #maybeExpire (tracked: TrackedExecution, taskId: string, attempt: number): Promise<void> {
    const programId = this.#programId
    const execution = executionAddress(programId, this.#settlement.configAddress!, executionKey(tracked.state.executionId))[0]
    const assignment = assignmentAddress(programId, execution, taskKey(taskId), attempt)[0]
    const info = await this.#settlement.connection!.getAccountInfo(assignment, 'confirmed')
    if (info === null) return
    const a = decodeAssignment(info.data)
    if (a.status !== AssignmentStatus.Assigned) return // committed in time, or already expired
    const sent = await sendTransaction(this.#settlement.connection!, [expire({ programId, execution, taskId: taskKey(taskId), assignment, node: a.node })], operatorKeypair(this.#ctx.identity))
    this.#ctx.log.info({ executionId: tracked.state.executionId, taskId, attempt, signature: sent.signature }, 'attempt expired on chain (deadline passed without a commitment)')
  }

  /**
   * The certified liveness round to select from: the newest one members voted with for this seed
   * (their latest ballots) that this oracle holds certified too; before any vote, the newest round
   * certified two rounds ago. Oracles
   * whose latest rounds differ (one just restarted, or a round certified between their votes)
   * converge in the next ballot instead of splitting again.
   */
  #chooseRound (executionId: string, taskId: string, attempt: number, seedSlot: number): ReturnType<CommitteeService['latestCertified']> {
    // every member sees the same votes, so every member ranks the rounds the same way
    const counts = new Map<number, number>()
    for (const v of this.#collectorOf()?.latestVotes(executionId, taskId, attempt) ?? []) {
      if (v.body.seedSlot !== seedSlot) continue // votes over an older seed (some members never saw them)
      counts.set(v.body.livenessRound, (counts.get(v.body.livenessRound) ?? 0) + 1)
    }
    // the newest round any member voted with that this oracle holds: a member that restarted holds
    // only rounds since its restart, so the members that hold older ones move to its round
    const ranked = [...counts.entries()].sort((a, b) => b[0] - a[0])
    for (const [round] of ranked) {
      const held = this.#committee.rounds.certified(round)
      if (held !== undefined) return held
    }
    // before any vote: the newest round certified at least two rounds ago, which every member
    // following the committee holds by now (the newest one may still be certifying somewhere)
    const settled = this.#committee.roundAt(Date.now()) - 2
    for (let r = settled; r > settled - 20; r--) {
      const held = this.#committee.rounds.certified(r)
      if (held !== undefined) return held
    }
    return this.#committee.latestCertified()
  }

  /**
   * Whether this oracle should send the transaction `key` now: members take turns in the submitter
   * order of the key (the first at once, the next after a takeover delay), each retrying at its pace.
   */
  #myTurn (key: string): boolean {
    const now = Date.now()
    const first = this.#quorumAt.get(key) ?? now
    this.#quorumAt.set(key, first)
    const schedule = submitSchedule(key, this.#members, this.#self, TAKEOVER_MS)
    if (schedule === undefined || now - first < schedule.firstAtMs) return false
    const last = this.#lastSubmit.get(key)
    if (last !== undefined && now - last < schedule.everyMs) return false
    this.#lastSubmit.set(key, now)
    return true
  }

  /** Sends RefreshSeed for a task whose seed slot is about to leave SlotHashes (in submitter order). */
  async #maybeRefresh (tracked: TrackedExecution, taskId: string, attempt: number): Promise<void> {
    const programId = this.#programId
    const config = this.#settlement.configAddress!
    const execution = executionAddress(programId, config, executionKey(tracked.state.executionId))[0]
    try {
      const sent = await sendTransaction(this.#settlement.connection!, [refreshSeed({ programId, config, execution, taskId: taskKey(taskId) })], operatorKeypair(this.#ctx.identity))
      this.#ctx.log.info({ executionId: tracked.state.executionId, taskId, attempt, signature: sent.signature }, 'seed refreshed on chain: nothing was settled while the old seed was usable')
    } catch (err) {
      this.#ctx.log.debug({ err, executionId: tracked.state.executionId, taskId }, 'refreshing the seed failed (another oracle may have)')
    }
  }

  /** Sends the quorum's Ed25519 instruction + assign when it is this oracle's turn. */
  #maybeSubmit (tracked: TrackedExecution, taskId: string, attempt: number): void {
    const s = tracked.state
    const key = attemptKey(s.executionId, taskId, attempt)
    // only a quorum over the seed the program will compute now can settle
    const seedSlot = this.#own.get(key)?.body.seedSlot
    const quorum = this.#collectorOf()?.quorum(s.executionId, taskId, attempt, this.#executions.currentSlot + EXPIRY_MARGIN_SLOTS, b => b.seedSlot === seedSlot)
    if (quorum === undefined || this.#inFlight.has(key)) return
    const b = quorum.body
    if (BigInt(b.expirySlot) < BigInt(this.#executions.currentSlot)) return
    // sent in the background: a confirmation takes up to a slot, and other tasks' steps go on meanwhile
    this.#background(key, async () => {
      const programId = this.#programId
      const config = this.#settlement.configAddress!
      const execution = executionAddress(programId, config, executionKey(s.executionId))[0]
      const nodeKey = new PublicKey(publicKeyOfPeer(b.node)!)
      const blacklist = canonicalBlacklist(b.blacklist.map(p => publicKeyOfPeer(p)!))
      const ed = ed25519Instruction(Buffer.from(quorum.digest, 'hex'), quorum.signatures.map(x => ({ publicKey: new PublicKey(publicKeyOfPeer(x.oracle)!), signature: x.signature })))
      const ix = assign({
        programId, payer: operatorKeypair(this.#ctx.identity).publicKey, config, execution, taskId: taskKey(taskId), attempt, kind: ASSIGNMENT_ROLE[b.kind] as AssignmentKind,
        node: nodeAddress(programId, config, nodeKey)[0], livenessRound: BigInt(b.livenessRound), expirySlot: BigInt(b.expirySlot), blacklist
      })
      const startedAt = Date.now()
      const sent = await sendTransaction(this.#settlement.connection!, [ed, ix], operatorKeypair(this.#ctx.identity))
      this.#ctx.log.info({ executionId: s.executionId, taskId, attempt, node: b.node, signature: sent.signature, slot: sent.slot, sendMs: Date.now() - startedAt }, 'assignment settled on chain')
      // the step may have applied it already (it reads the chain at every slot): announce in any case
      await this.#checkSettled(tracked, taskId, attempt)
      await this.#announce(tracked, taskId, attempt)
    }, 'assignment submission failed (another oracle may have settled it)')
  }

  /** Applies an assignment once it is on chain; the oracle that settled it announces it to the nodes. */
  async #checkSettled (tracked: TrackedExecution, taskId: string, attempt: number): Promise<boolean> {
    const s = tracked.state
    const key = attemptKey(s.executionId, taskId, attempt)
    if (this.#settled.has(key)) return true
    if (!this.#own.has(key)) return false // nothing voted yet: the seed slot may not even exist
    const programId = this.#programId
    const execution = executionAddress(programId, this.#settlement.configAddress!, executionKey(s.executionId))[0]
    const info = await this.#settlement.connection!.getAccountInfo(assignmentAddress(programId, execution, taskKey(taskId), attempt)[0], 'confirmed')
    if (info === null || !info.owner.equals(programId)) return false
    if (this.#settled.has(key)) return true // applied by a concurrent check meanwhile
    const a = decodeAssignment(info.data)
    this.#settled.add(key)
    this.#seedSlots.delete(key)
    // the votes that match the seed the program recorded tell how the node was drawn
    const seedHex = hex(a.seed)
    const drawn = [this.#collectorOf()?.quorum(s.executionId, taskId, attempt)?.body, ...(this.#collectorOf()?.latestVotes(s.executionId, taskId, attempt) ?? []).map(v => v.body), this.#own.get(key)?.body]
      .find(b => b !== undefined && b.seed === seedHex)
    const selection = drawn !== undefined ? { livenessRound: drawn.livenessRound, seedSlot: drawn.seedSlot, seed: drawn.seed, ballot: drawn.ballot } : undefined
    this.#collectorOf()?.forgetAttempt(s.executionId, taskId, attempt)
    // the assignment records the node account (PDA of the operator), not the operator key
    let operator = this.#settlement.registry().find(e => e.address === a.node.toBase58())?.node.operator
    if (operator === undefined) {
      await this.#settlement.refresh()
      operator = this.#settlement.registry().find(e => e.address === a.node.toBase58())?.node.operator
    }
    if (operator === undefined) throw new Error(`assignment names node account ${a.node.toBase58()}, which is not in the registry`)
    const node = peerIdOfKey(operator.toBytes())
    const deadlineMs = Number(a.deadline) * 1000
    const kind = assignedKindOf(a.kind)
    await this.#executions.apply(s.executionId, { type: 'assigned', at: Date.now(), taskId, attempt, node, kind, deadlineAt: deadlineMs, ...(selection !== undefined ? { selection } : {}) })
    // this oracle's own assign transaction is in flight: its sender announces the result
    if (this.#inFlight.has(key)) this.#announcements.set(key, { node, kind, deadlineMs, assignedSlot: Number(a.assignedSlot) })
    return true
  }

  /** The oracle that settled an assignment announces it to the nodes (a hint: they check the chain). */
  async #announce (tracked: TrackedExecution, taskId: string, attempt: number): Promise<void> {
    const s = tracked.state
    const key = attemptKey(s.executionId, taskId, attempt)
    const applied = this.#announcements.get(key)
    this.#announcements.delete(key)
    if (applied === undefined) return
    const { node, kind, deadlineMs, assignedSlot } = applied
    const t = tracked.state.tasks.find(x => x.taskId === taskId)!
    const modelTask = tracked.model.tasks.find(x => x.id === t.task)!
    const inputs = Object.fromEntries(Object.entries(t.inputs).flatMap(([n, u]) => u !== null ? [[n, u]] : []))
    const body = {
      v: 1 as const, oracle: this.#self, executionId: s.executionId, taskId, attempt, kind, node, taskpack: modelTask.taskpack,
      inputs, computeUnits: t.computeUnits, assignedSlot, deadlineMs, timestampMs: Date.now()
    }
    const data = encodeExecutionMessage({ type: ASSIGNMENT_NOTICE_KIND, body }, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    await this.#ctx.gossip.publish('execution', data).catch(err => { this.#ctx.log.warn({ err }, 'announcing the assignment failed') })
    this.#executions.deliverLocal({ type: ASSIGNMENT_NOTICE_KIND, body }, this.#self)
  }
}
