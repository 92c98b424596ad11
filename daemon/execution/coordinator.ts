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
  ed25519Instruction, executionAddress, expire, refreshSeed, SEED_STALE_SLOTS, nodeAddress, taskStateAddress, AssignmentKind, AssignmentStatus, NodeStatus, type ExecutionAccount
} from '../../programs/client/index.js'
import { selectNodes, type Candidate } from '../../protocols/execution/selection.js'
import { VoteCollector, attemptKey, submitSchedule } from '../../protocols/execution/votes.js'
import {
  withDigest, encodeAssignmentVote, encodeExecutionMessage, validateAssignmentVote, ASSIGNMENT_NOTICE_KIND, MAX_RANKED,
  type AssignmentDigestFn, type AssignmentVote, type AssignmentVoteBody
} from '../../protocols/execution/messages.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import type { Verdict } from '../../protocols/validation.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { CommitteeService } from '../services/committee.js'
import type { ExecutionService, TrackedExecution } from '../services/execution.js'
import { publicKeyOfPeer } from '../services/liveness.js'
import { operatorKeypair, readExecution, readSlotHash, sendTransaction } from './chain.js'
import { peerIdOfKey } from './keys.js'

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
const TICK_MS = 100
/** how often an unsettled ballot is checked for expiry, a split, or a moved trigger slot */
const RECHECK_MS = 1000
/** a ballot this close to its expiry is replaced rather than submitted */
const EXPIRY_MARGIN_SLOTS = 10
/** the chain compares whole seconds of its own clock: expire a little after the deadline */
const EXPIRE_GRACE_MS = 1200
const TAKEOVER_MS = 1500

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
  #busy = false

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
  }

  start (): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return
      this.#busy = true
      this.tick().catch(err => { this.#ctx.log.warn({ err }, 'execution coordinator step failed') }).finally(() => { this.#busy = false })
    }, TICK_MS)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  async tick (): Promise<void> {
    const connection = this.#settlement.connection
    const config = this.#settlement.config
    if (connection === undefined || config === undefined) return
    for (const tracked of this.#executions.list()) {
      const s = tracked.state
      if (s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled') continue
      for (const t of s.tasks) {
        if (t.state !== 'ASSIGNED' || t.attempt === null || t.deadlineAt === null || Date.now() < t.deadlineAt + EXPIRE_GRACE_MS) continue
        await this.#maybeExpire(tracked, t.taskId, t.attempt).catch(err => { this.#ctx.log.debug({ err, executionId: s.executionId, taskId: t.taskId }, 'expiring an attempt failed') })
      }
      // ready tasks get a primary assignment; sampled tasks without a live verifier get a verification
      const wanted = [...s.ready, ...s.tasks.filter(x => x.state === 'PENDING_VERIFICATION' && x.verifier === null).map(x => x.taskId)]
      for (const taskId of wanted) {
        const t = s.tasks.find(x => x.taskId === taskId)
        if (t === undefined) continue
        const key = attemptKey(s.executionId, taskId, t.nextAttempt)
        try {
          if (await this.#checkSettled(tracked, taskId, t.nextAttempt)) continue
          const own = this.#own.get(key)
          if (own === undefined) await this.#vote(tracked, taskId, 0)
          else if (Date.now() - own.checkedAt >= RECHECK_MS) {
            own.checkedAt = Date.now()
            const stale = await this.#staleBallot(tracked, taskId, own)
            if (stale !== undefined) {
              this.#ctx.log.debug({ executionId: s.executionId, taskId, attempt: t.nextAttempt, ballot: own.ballot, why: stale }, 'voting in the next ballot')
              await this.#vote(tracked, taskId, own.ballot + 1)
            }
          }
          await this.#maybeSubmit(tracked, taskId, t.nextAttempt)
        } catch (err) {
          if (!this.#reported.has(key + (err as Error).message)) {
            this.#reported.add(key + (err as Error).message)
            this.#ctx.log.warn({ err, executionId: s.executionId, taskId }, 'assignment step failed')
          }
        }
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
   * a task of the execution becomes VERIFIED).
   */
  async #triggerSlot (tracked: TrackedExecution, taskId: string): Promise<bigint | undefined> {
    const connection = this.#settlement.connection!
    const execution = executionAddress(this.#programId, this.#settlement.configAddress!, executionKey(tracked.state.executionId))[0]
    const info = await connection.getAccountInfo(taskStateAddress(this.#programId, execution, taskKey(taskId))[0], 'confirmed')
    if (info !== null) return decodeTaskState(info.data).triggerSlot
    const e = await readExecution(connection, this.#programId, execution)
    return e?.readySlot
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
    const trigger = await this.#triggerSlot(tracked, taskId)
    const config = this.#settlement.config
    if (trigger !== undefined && config !== undefined && Number(trigger) + config.params.seedDelaySlots !== b.seedSlot) return 'trigger slot moved'
    return undefined
  }

  /** Computes this oracle's selection for the task's next attempt and publishes its vote in `ballot`. */
  async #vote (tracked: TrackedExecution, taskId: string, requestedBallot: number): Promise<void> {
    let ballot = requestedBallot
    const connection = this.#settlement.connection!
    const config = this.#settlement.config!
    const s = tracked.state
    const t = s.tasks.find(x => x.taskId === taskId)!
    const attempt = t.nextAttempt
    const execution = executionAddress(this.#programId, this.#settlement.configAddress!, executionKey(s.executionId))[0]
    const trigger = await this.#triggerSlot(tracked, taskId)
    if (trigger === undefined) return
    const seedSlot = trigger + BigInt(config.params.seedDelaySlots)
    const current = this.#executions.currentSlot
    if (BigInt(current) <= seedSlot) return // the seed does not exist yet
    if (BigInt(current) > seedSlot + BigInt(SEED_STALE_SLOTS)) {
      // nothing settled while the seed was usable (too few oracles up?): move the trigger slot on
      await this.#maybeRefresh(tracked, taskId, attempt)
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
    const slotHash = await readSlotHash(connection, seedSlot)
    if (slotHash === undefined) return
    const seed = attemptSeed({ genesisHash: Buffer.from(this.#ctx.genesisHash, 'hex'), executionId: executionKey(s.executionId), taskId: taskKey(taskId), attempt, slot: seedSlot, slotHash: slotHash.hash })
    const round = this.#chooseRound(s.executionId, taskId, attempt, Number(seedSlot))
    if (round === undefined) return
    const onChain = await this.#executionAccount(tracked)
    const entry = onChain?.tasks.find(x => hex(x.taskId) === hex(taskKey(taskId)))
    if (entry === undefined) return
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
    const payment = verification ? entry.price * BigInt(config.params.validatorRewardBps) / 10_000n : entry.price
    const selection = selectNodes(pool, { taskId, vramBytes: modelTask.vramRequirement, gpu: 'optional', datasets, payment },
      seed, new Set(blacklist), { minStake: config.params.minStake, minStakeRatio: config.params.minStakeRatioBps / 10_000 }, Math.min(RANKED, MAX_RANKED))
    if (selection.ranked.length === 0) {
      const k = `none:${attemptKey(s.executionId, taskId, attempt)}:${round.round}`
      if (!this.#reported.has(k)) {
        this.#reported.add(k)
        this.#ctx.log.warn({ executionId: s.executionId, taskId, kind: verification ? 'verification' : 'primary', excluded: selection.excluded }, verification ? 'no eligible validator for a sampled task' : 'no eligible node for a ready task')
      }
      return
    }
    const body = withDigest({
      v: 1, oracle: this.#self, committeeEpoch: config.committeeEpoch.toString(), executionId: s.executionId, taskId, attempt, ballot,
      kind: verification ? 'verification' : 'primary', node: selection.ranked[0]!, blacklist, seedSlot: Number(seedSlot), seed: hex(seed),
      livenessRound: round.round, computeUnits: t.computeUnits, expirySlot: expiryOf(Number(seedSlot), ballot),
      selection: { ranked: selection.ranked, eligible: selection.eligible.length }
    }, publicKeyOfPeer, this.digestOf)
    const data = encodeAssignmentVote(body, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    this.#own.set(attemptKey(s.executionId, taskId, attempt), { ballot, body, checkedAt: Date.now() })
    const own = this.validateVote(data, this.#self, Date.now())
    if (own.result === 'accept') this.handleVote(own.value)
    else this.#ctx.log.warn({ reason: own.reason }, 'own assignment vote does not validate')
    await this.#ctx.gossip.publish('committee', data)
    this.#ctx.log.debug({ executionId: s.executionId, taskId, attempt, ballot, node: body.node, seedSlot: body.seedSlot, livenessRound: body.livenessRound, eligible: selection.eligible.length, excluded: selection.excluded }, 'assignment vote published')
  }

  /**
   * Expires an attempt whose deadline passed without a commitment (anyone may; the committee does it
   * in submitter order so one transaction usually suffices). The chain watcher applies the result.
   */
  async #maybeExpire (tracked: TrackedExecution, taskId: string, attempt: number): Promise<void> {
    const key = `expire:${attemptKey(tracked.state.executionId, taskId, attempt)}`
    if (!this.#myTurn(key)) return
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
    const key = `refresh:${attemptKey(tracked.state.executionId, taskId, attempt)}`
    if (!this.#myTurn(key)) return
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
  async #maybeSubmit (tracked: TrackedExecution, taskId: string, attempt: number): Promise<void> {
    const s = tracked.state
    const key = attemptKey(s.executionId, taskId, attempt)
    // only a quorum over the seed the program will compute now can settle
    const seedSlot = this.#own.get(key)?.body.seedSlot
    const quorum = this.#collectorOf()?.quorum(s.executionId, taskId, attempt, this.#executions.currentSlot + EXPIRY_MARGIN_SLOTS, b => b.seedSlot === seedSlot)
    if (quorum === undefined || !this.#myTurn(key)) return
    const b = quorum.body
    if (BigInt(b.expirySlot) < BigInt(this.#executions.currentSlot)) return
    const programId = this.#programId
    const config = this.#settlement.configAddress!
    const execution = executionAddress(programId, config, executionKey(s.executionId))[0]
    const nodeKey = new PublicKey(publicKeyOfPeer(b.node)!)
    const blacklist = canonicalBlacklist(b.blacklist.map(p => publicKeyOfPeer(p)!))
    const ed = ed25519Instruction(Buffer.from(quorum.digest, 'hex'), quorum.signatures.map(x => ({ publicKey: new PublicKey(publicKeyOfPeer(x.oracle)!), signature: x.signature })))
    const ix = assign({
      programId, payer: operatorKeypair(this.#ctx.identity).publicKey, config, execution, taskId: taskKey(taskId), attempt, kind: b.kind === 'verification' ? AssignmentKind.Verification : AssignmentKind.Primary,
      node: nodeAddress(programId, config, nodeKey)[0], livenessRound: BigInt(b.livenessRound), expirySlot: BigInt(b.expirySlot), blacklist
    })
    try {
      const sent = await sendTransaction(this.#settlement.connection!, [ed, ix], operatorKeypair(this.#ctx.identity))
      this.#ctx.log.info({ executionId: s.executionId, taskId, attempt, node: b.node, signature: sent.signature }, 'assignment settled on chain')
      await this.#checkSettled(tracked, taskId, attempt, true)
    } catch (err) {
      this.#ctx.log.debug({ err, executionId: s.executionId, taskId }, 'assignment submission failed (another oracle may have settled it)')
    }
  }

  /** Applies an assignment once it is on chain; the oracle that settled it announces it to the nodes. */
  async #checkSettled (tracked: TrackedExecution, taskId: string, attempt: number, announce = false): Promise<boolean> {
    const s = tracked.state
    const key = attemptKey(s.executionId, taskId, attempt)
    if (this.#settled.has(key)) return true
    if (!this.#own.has(key)) return false // nothing voted yet: the seed slot may not even exist
    const programId = this.#programId
    const execution = executionAddress(programId, this.#settlement.configAddress!, executionKey(s.executionId))[0]
    const info = await this.#settlement.connection!.getAccountInfo(assignmentAddress(programId, execution, taskKey(taskId), attempt)[0], 'confirmed')
    if (info === null || !info.owner.equals(programId)) return false
    const a = decodeAssignment(info.data)
    this.#settled.add(key)
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
    const kind = a.kind === AssignmentKind.Verification ? 'verification' as const : 'primary' as const
    await this.#executions.apply(s.executionId, { type: 'assigned', at: Date.now(), taskId, attempt, node, kind, deadlineAt: deadlineMs, ...(selection !== undefined ? { selection } : {}) })
    if (announce) {
      const t = tracked.state.tasks.find(x => x.taskId === taskId)!
      const modelTask = tracked.model.tasks.find(x => x.id === t.task)!
      const inputs = Object.fromEntries(Object.entries(t.inputs).flatMap(([n, u]) => u !== null ? [[n, u]] : []))
      const body = {
        v: 1 as const, oracle: this.#self, executionId: s.executionId, taskId, attempt, kind, node, taskpack: modelTask.taskpack,
        inputs, computeUnits: t.computeUnits, assignedSlot: Number(a.assignedSlot), deadlineMs, timestampMs: Date.now()
      }
      const data = encodeExecutionMessage({ type: ASSIGNMENT_NOTICE_KIND, body }, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
      await this.#ctx.gossip.publish('execution', data).catch(err => { this.#ctx.log.warn({ err }, 'announcing the assignment failed') })
      this.#executions.deliverLocal({ type: ASSIGNMENT_NOTICE_KIND, body }, this.#self)
    }
    return true
  }
}
