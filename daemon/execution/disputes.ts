/**
 * Disputes and slashing (issue 8, items 5 and 7), run by the committee oracles.
 *
 * A dispute opens when a verified attempt's two results disagree:
 *  - the chain resolved the task VERIFICATION_FAILED (the verifier revealed a Mismatch with another
 *    output root); or
 *  - the chain resolved it VERIFIED on the verifier's Match verdict although the two revealed roots
 *    differ — legitimate only when the verifier's own published outputs hash to its revealed root and
 *    match the asserter's within tolerance. A verifier that publishes nothing, or outputs that do not
 *    hash to its root, or outputs that contradict its own verdict, is the fraud (this catches a lazy
 *    validator that commits to a random root and copies "Match").
 *
 * One more independent re-execution decides (DESIGN.md, Proof of Sampling): after VERIFICATION_FAILED
 * the committee reassigns the task as a new primary attempt, and its revealed result is the third
 * opinion; the party the majority disagrees with is slashed. If all three disagree nobody is slashed,
 * the taskpack is flagged nondeterministic (logged, and listed by bitflow_getSlashes) and the oracles
 * end the execution as failed with that reason (a requester's daemon that is not an oracle is not
 * told: known limit). Tensors are
 * compared with compareOutputs at the taskpack's precision class, fetched through the content service.
 *
 * Then every oracle signs a slash vote (protocols/execution/slash-votes.ts) over the program's slash
 * digest and publishes it on the committee topic. With a quorum (the on-chain threshold) the
 * scheduled submitter (votes.ts submitSchedule) sends the Ed25519 instruction + RecordSlash (after
 * creating the prover owner's associated token account for the stake mint, idempotently), and once
 * the chain's clock passes the challenge delay the oracles send ExecuteSlash in submitter order.
 * Every step is checked against the chain (the slash account, the accused node's status).
 *
 * Every daemon with settlement validates and relays slash votes and answers bitflow_getSlashes from
 * the chain's slash accounts. The requester's daemon also tops up its escrow after a failed
 * verification: the expected-cost escrow (price × (1 + p·R)) pays one verification per task, and a
 * reassigned task needs a second one.
 *
 * Known limits: disputes and the completions they compare live in memory (a restarted oracle
 * re-discovers a dispute from its execution log and the chain, but not the outputs published before
 * it restarted); a task that ended VERIFIED on a lying verifier's word while the asserter was wrong
 * too keeps its (wrong) result: the verifier is slashed, the task is not re-run.
 */
import { createHash } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { PublicKey, SYSVAR_CLOCK_PUBKEY, type Connection } from '@solana/web3.js'
import { Key } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import {
  assignmentAddress, decodeAssignment, decodeExecution, decodeNode, decodeSlash, decodeTaskState, ed25519Instruction, executeSlash,
  executionAddress, nodeAddress, recordSlash, slashAddress, slashDigest, taskStateAddress, topUp, verificationPayment,
  AssignmentKind, AssignmentStatus, NodeStatus, Sampling, SlashStatus, TaskFlag, Verdict as ChainVerdict, SLASH_SIZE,
  type AssignmentAccount, type NodeAccount, type SlashAccount
} from '../../programs/client/index.js'
import { associatedTokenAddress, createAssociatedTokenAccountIdempotent } from '../../programs/chain/spl.js'
import { compareOutputs, type PrecisionClass } from '../../protocols/execution/compare.js'
import { COMPLETION_KIND, type CompletionBody } from '../../protocols/execution/messages.js'
import {
  SlashVoteCollector, encodeSlashVote, slashKey, slashKeyOf, validateSlashVote, withSlashDigest,
  type SlashDigestFn, type SlashVote, type SlashVoteBody
} from '../../protocols/execution/slash-votes.js'
import { submitSchedule } from '../../protocols/execution/votes.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { isTerminalStatus, type TaskRecord } from '../../protocols/execution/state.js'
import { decodeSafetensors, type Tensor } from '../../protocols/tensor/safetensors.js'
import { parseManifest, MANIFEST_FILE } from '../../protocols/taskpack/manifest.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import type { Verdict } from '../../protocols/validation.js'
import { BitflowError } from '../errors.js'
import { param } from '../rpc/registry.js'
import { RpcError, RpcErrorCode } from '../rpc/errors.js'
import { SlashesResultSchema } from '../rpc/types.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { CommitteeService } from '../services/committee.js'
import type { ContentService } from '../content/service.js'
import type { ExecutionService, TrackedExecution } from '../services/execution.js'
import { publicKeyOfPeer } from '../services/liveness.js'
import { operatorKeypair, sendTransaction } from './chain.js'
import { peerIdOfKey } from './keys.js'

export type DisputeErrorCode = 'ERR_DISPUTE_CHAIN' | 'ERR_DISPUTE_EVIDENCE' | 'ERR_DISPUTE_SUBMIT'

export class DisputeError extends BitflowError {
  constructor (code: DisputeErrorCode, message: string, options?: ErrorOptions) { super(code, message, options) }
}

const TICK_MS = 1000
const TAKEOVER_MS = 1500
/** a slash vote expires at anchor slot + WINDOW × (ballot + 2), the anchor being the later commitment */
export const SLASH_WINDOW_SLOTS = 300
const EXPIRY_MARGIN_SLOTS = 20
/** how long published outputs may lag behind what the chain shows before they count as withheld */
const OUTPUTS_GRACE_MS = 5000
const ABANDON_MS = 15 * 60_000
const SCAN_AFTER_FINISH_MS = 15 * 60_000
const TOPUP_RETRY_MS = 5000
/** published outputs are kept this long for disputes */
const COMPLETIONS_KEPT_MS = 30 * 60_000

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const attemptKey = (executionId: string, taskId: string, attempt: number): string => `${executionId}|${taskId}|${attempt}`

export type AccusedRole = 'asserter' | 'verifier'
export type DisputeKind = 'verification-failed' | 'verified-suspicious'
export type DisputeStatus = 'open' | 'voting' | 'recorded' | 'executed' | 'no-fraud' | 'nondeterministic' | 'already-slashed' | 'abandoned'

/** One result of the disputed task: the chain's record of an attempt and its node. */
interface Party {
  attempt: number
  nodeAccount: PublicKey
  operator: PublicKey
  peer: string
  commitment: Uint8Array
  root: string
  commitSlot: bigint
  verdict: ChainVerdict
}

interface Dispute {
  executionId: string
  taskId: string
  taskpack: string
  kind: DisputeKind
  status: DisputeStatus
  asserter: Party
  verifier: Party
  third: Party | undefined
  /** when the third result (or, VERIFIED case, the dispute) was first seen complete */
  evidenceSince: number
  openedAt: number
  decidedAt: number | undefined
  accused: AccusedRole | undefined
  reason: string | undefined
  /** slash key once a vote was cast */
  slash: string | undefined
  stakeBefore: bigint | undefined
  fraudCompletedAt: number | undefined
}

interface SlashTrack {
  key: string
  body: SlashVoteBody
  address: PublicKey
  accusedNode: PublicKey
  accusedRole: AccusedRole
  status: 'voting' | 'recorded' | 'executed'
  stakeBefore: bigint | undefined
  account: SlashAccount | undefined
  stakeAfter: bigint | undefined
  recordSignature: string | undefined
  executeSignature: string | undefined
  recordedSeenAt: number | undefined
  executedSeenAt: number | undefined
}

interface Nondeterministic { taskpack: string, executionId: string, taskId: string, reason: string, at: number }

/** The Clock sysvar's unix timestamp (what the program compares executable_at with). */
async function chainUnixTime (connection: Connection): Promise<bigint | undefined> {
  const info = await connection.getAccountInfo(SYSVAR_CLOCK_PUBKEY, 'confirmed')
  return info === null || info.data.length < 40 ? undefined : info.data.readBigInt64LE(32)
}

export class DisputeResolver {
  readonly #ctx: ServiceContext
  readonly #executions: ExecutionService
  readonly #self: string
  readonly #members: string[]
  readonly #isOracle: boolean
  readonly #enabled: boolean
  #collector: SlashVoteCollector | undefined
  /** signed completions by `<execution>|<task>|<attempt>|<node>`, from the execution topic */
  readonly #completions = new Map<string, { body: CompletionBody, receivedAt: number }>()
  readonly #disputes = new Map<string, Dispute>()
  /** VERIFIED attempts already checked for a suspicious verification */
  readonly #checked = new Set<string>()
  readonly #tracks = new Map<string, SlashTrack>()
  /** own votes by slash key: ballots voted */
  readonly #voted = new Map<string, Set<number>>()
  readonly #quorumAt = new Map<string, number>()
  readonly #lastSubmit = new Map<string, number>()
  readonly #nondeterministic: Nondeterministic[] = []
  readonly #precision = new Map<string, PrecisionClass>()
  readonly #outputs = new Map<string, Record<string, Tensor>>()
  readonly #topUps = new Map<string, number>()
  readonly #reported = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #busy = false
  #stopped = false

  constructor (ctx: ServiceContext, executions: ExecutionService) {
    this.#ctx = ctx
    this.#executions = executions
    this.#self = ctx.identity.peerId.toString()
    this.#members = ctx.genesis.committee.map(m => m.peerId)
    this.#isOracle = ctx.options.roles.includes('oracle') && this.#members.includes(this.#self)
    this.#enabled = ctx.options.programId !== undefined
    if (this.#enabled) {
      ctx.services.find<CommitteeService>('committee')?.routeSlashVotes({
        validate: (data, from, nowMs) => this.validateVote(data, from, nowMs),
        handle: vote => { if (this.#isOracle) this.handleVote(vote) }
      })
      // the outputs parties publish: what a dispute compares (only oracles decide disputes)
      if (this.#isOracle) {
        executions.onMessage(msg => {
          if (msg.type !== COMPLETION_KIND) return
          const b = msg.body
          this.#completions.set(`${attemptKey(b.executionId, b.taskId, b.attempt)}|${b.node}`, { body: b, receivedAt: Date.now() })
        })
      }
    }
    this.#registerRpc()
  }

  /**
   * Peers found at fault in a dispute that is not settled yet (slash voting or recorded): the
   * committee stops assigning them work before the chain marks them slashed.
   */
  accusedPeers (): Set<string> {
    const out = new Set<string>()
    for (const d of this.#disputes.values()) {
      if (d.accused === undefined || !['voting', 'recorded', 'executed', 'already-slashed'].includes(d.status)) continue
      out.add(d.accused === 'asserter' ? d.asserter.peer : d.verifier.peer)
    }
    return out
  }

  get #settlement (): SettlementService { return this.#ctx.services.get<SettlementService>('settlement') }
  get #programId (): PublicKey { return new PublicKey(this.#ctx.options.programId!) }

  #collectorOf (): SlashVoteCollector | undefined {
    const threshold = this.#settlement.config?.threshold
    if (threshold === undefined || this.#members.length === 0) return undefined
    if (this.#collector === undefined || this.#collector.threshold !== Math.min(threshold, this.#members.length)) {
      this.#collector = new SlashVoteCollector(this.#members, Math.min(threshold, this.#members.length))
    }
    return this.#collector
  }

  digestOf: SlashDigestFn = f => slashDigest({ ...f, programId: this.#programId, genesisHash: Buffer.from(this.#ctx.genesisHash, 'hex') })

  /** The committee-topic validator for slash votes (routed here by the committee service). */
  validateVote (data: Uint8Array, _from: string, _nowMs: number): Verdict<SlashVote> {
    return validateSlashVote(data, {
      genesisHash: this.#ctx.genesisHash,
      committee: new Set(this.#members),
      committeeEpoch: this.#settlement.config?.committeeEpoch ?? 0n,
      currentSlot: this.#executions.currentSlot,
      maxExpiryAheadSlots: SLASH_WINDOW_SLOTS * 3,
      publicKeyOf: publicKeyOfPeer,
      verify: ed25519Verify,
      digestOf: this.digestOf
    })
  }

  handleVote (vote: SlashVote): void {
    const r = this.#collectorOf()?.add(vote)
    if (r === 'equivocation') this.#ctx.log.warn({ oracle: vote.body.oracle, slash: slashKeyOf(vote.body) }, 'oracle equivocated on a slash vote')
  }

  start (): void {
    if (!this.#enabled) return
    this.#timer = setInterval(() => {
      if (this.#busy || this.#stopped) return
      this.#busy = true
      this.tick().catch(err => { this.#ctx.log.warn({ err }, 'dispute step failed') }).finally(() => { this.#busy = false })
    }, TICK_MS)
    this.#timer.unref()
  }

  stop (): void {
    this.#stopped = true
    clearInterval(this.#timer)
  }

  async tick (): Promise<void> {
    const connection = this.#settlement.connection
    if (connection === undefined || this.#settlement.config === undefined || this.#settlement.configAddress === undefined) return
    await this.#topUpOwn(connection)
    const now = Date.now()
    for (const [key, c] of this.#completions) if (now - c.receivedAt > COMPLETIONS_KEPT_MS) this.#completions.delete(key)
    if (!this.#isOracle) return
    for (const tracked of this.#executions.list()) {
      const s = tracked.state
      if (isTerminalStatus(s.status) && s.finishedAt !== null && now - s.finishedAt > SCAN_AFTER_FINISH_MS) continue
      for (const t of s.tasks) {
        try {
          await this.#discover(connection, tracked, t)
        } catch (err) {
          this.#once(`discover:${s.executionId}|${t.taskId}:${(err as Error).message}`, () => { this.#ctx.log.warn({ err, executionId: s.executionId, taskId: t.taskId }, 'checking a task for a dispute failed') })
        }
      }
    }
    for (const d of this.#disputes.values()) {
      if (d.status !== 'open' && d.status !== 'voting') continue
      try {
        if (d.status === 'open') await this.#decide(connection, d)
        if (d.status === 'voting') await this.#revote(connection, d)
      } catch (err) {
        this.#once(`dispute:${d.executionId}|${d.taskId}|${d.asserter.attempt}:${(err as Error).message}`, () => { this.#ctx.log.warn({ err, executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt }, 'dispute step failed') })
      }
    }
    const collector = this.#collectorOf()
    for (const key of collector?.keys() ?? []) {
      await this.#maybeRecord(connection, key).catch(err => {
        this.#once(`record:${key}:${(err as Error).message}`, () => { this.#ctx.log.warn({ err, slash: key }, 'recording a slash failed') })
      })
    }
    for (const track of this.#tracks.values()) {
      if (track.status === 'executed') continue
      await this.#follow(connection, track).catch(err => {
        this.#once(`follow:${track.key}:${(err as Error).message}`, () => { this.#ctx.log.warn({ err, slash: track.key }, 'following a slash failed') })
      })
    }
  }

  #once (key: string, f: () => void): void {
    if (this.#reported.has(key)) return
    if (this.#reported.size > 4096) this.#reported.clear()
    this.#reported.add(key)
    f()
  }

  #executionAccount (executionId: string): PublicKey {
    return executionAddress(this.#programId, this.#settlement.configAddress!, executionKey(executionId))[0]
  }

  async #assignments (connection: Connection, executionId: string, taskId: string, attempts: number[]): Promise<Map<number, AssignmentAccount>> {
    const execution = this.#executionAccount(executionId)
    const keys = attempts.map(a => assignmentAddress(this.#programId, execution, taskKey(taskId), a)[0])
    const infos = keys.length > 0 ? await connection.getMultipleAccountsInfo(keys, 'confirmed') : []
    const out = new Map<number, AssignmentAccount>()
    infos.forEach((info, i) => {
      if (info === null || info === undefined || !info.owner.equals(this.#programId)) return
      try { out.set(attempts[i]!, decodeAssignment(info.data)) } catch { /* not an assignment */ }
    })
    return out
  }

  async #node (connection: Connection, account: PublicKey): Promise<NodeAccount> {
    const info = await connection.getAccountInfo(account, 'confirmed')
    if (info === null || !info.owner.equals(this.#programId)) throw new DisputeError('ERR_DISPUTE_EVIDENCE', `node account ${account.toBase58()} is not on chain`)
    return decodeNode(info.data)
  }

  async #party (connection: Connection, a: AssignmentAccount): Promise<Party> {
    const operator = this.#settlement.registry().find(e => e.address === a.node.toBase58())?.node.operator ?? (await this.#node(connection, a.node)).operator
    return { attempt: a.attempt, nodeAccount: a.node, operator, peer: peerIdOfKey(operator.toBytes()), commitment: a.commitment, root: hex(a.outputRoot), commitSlot: a.commitSlot, verdict: a.verdict }
  }

  /** Opens disputes for a task: every failed verification, and a VERIFIED attempt whose roots differ. */
  async #discover (connection: Connection, tracked: TrackedExecution, t: TaskRecord): Promise<void> {
    const executionId = tracked.state.executionId
    const taskpack = tracked.model.tasks.find(x => x.id === t.task)?.taskpack ?? ''
    for (const f of t.failures) {
      if (!f.reason.startsWith('verification failed')) continue
      const key = attemptKey(executionId, t.taskId, f.attempt)
      if (this.#disputes.has(key)) continue
      const range = Array.from({ length: Math.max(0, Math.min(t.nextAttempt, f.attempt + 9) - f.attempt - 1) }, (_, i) => f.attempt + 1 + i)
      const found = await this.#assignments(connection, executionId, t.taskId, [f.attempt, ...range])
      const asserter = found.get(f.attempt)
      const verifier = [...found.values()].filter(a => a.kind === AssignmentKind.Verification && a.verifies === f.attempt && a.status === AssignmentStatus.Revealed && a.resolved).pop()
      if (asserter === undefined || verifier === undefined || asserter.status !== AssignmentStatus.Revealed) continue
      this.#open(key, { executionId, taskId: t.taskId, taskpack, kind: 'verification-failed', asserter: await this.#party(connection, asserter), verifier: await this.#party(connection, verifier) })
    }
    if (t.state !== 'VERIFIED' || t.attempt === null) return
    const key = attemptKey(executionId, t.taskId, t.attempt)
    if (this.#checked.has(key) || this.#disputes.has(key)) return
    const info = await connection.getAccountInfo(taskStateOf(this.#programId, this.#executionAccount(executionId), t.taskId), 'confirmed')
    if (info === null) return
    const chain = decodeTaskState(info.data)
    if (chain.sampling !== Sampling.Sampled || chain.primaryAttempt !== t.attempt) { this.#checked.add(key); return }
    const found = await this.#assignments(connection, executionId, t.taskId, [t.attempt, chain.verifierAttempt])
    const asserter = found.get(t.attempt)
    const verifier = found.get(chain.verifierAttempt)
    if (asserter === undefined || verifier === undefined || verifier.status !== AssignmentStatus.Revealed) return
    this.#checked.add(key)
    if (hex(asserter.outputRoot) === hex(verifier.outputRoot)) return
    this.#open(key, { executionId, taskId: t.taskId, taskpack, kind: 'verified-suspicious', asserter: await this.#party(connection, asserter), verifier: await this.#party(connection, verifier) })
  }

  #open (key: string, d: Pick<Dispute, 'executionId' | 'taskId' | 'taskpack' | 'kind' | 'asserter' | 'verifier'>): void {
    const now = Date.now()
    this.#disputes.set(key, { ...d, status: 'open', third: undefined, evidenceSince: now, openedAt: now, decidedAt: undefined, accused: undefined, reason: undefined, slash: undefined, stakeBefore: undefined, fraudCompletedAt: undefined })
    this.#ctx.log.info({ executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, verifierAttempt: d.verifier.attempt, kind: d.kind, asserter: d.asserter.peer, verifier: d.verifier.peer }, d.kind === 'verification-failed'
      ? 'dispute opened: the verifier disagreed; waiting for the re-execution'
      : 'dispute opened: verified on a Match verdict although the revealed output roots differ')
  }

  /** The party's published outputs, when its signed completion matches the root it revealed on chain. */
  #outputsOf (d: Dispute, p: Party): { body: CompletionBody | undefined, lying: boolean } {
    const c = this.#completions.get(`${attemptKey(d.executionId, d.taskId, p.attempt)}|${p.peer}`)
    if (c === undefined) return { body: undefined, lying: false }
    return c.body.outputRoot === p.root ? { body: c.body, lying: false } : { body: undefined, lying: true }
  }

  async #load (outputs: Record<string, string>): Promise<Record<string, Tensor>> {
    const content = this.#ctx.services.get<ContentService>('content')
    const out: Record<string, Tensor> = {}
    for (const [name, uri] of Object.entries(outputs)) {
      let tensors = this.#outputs.get(uri)
      if (tensors === undefined) {
        const got = await content.getTensor(uri, { inline: true, signal: AbortSignal.any([this.#ctx.signal, AbortSignal.timeout(30_000)]) })
        if (got.safetensorsBase64 === undefined) throw new DisputeError('ERR_DISPUTE_EVIDENCE', `output ${uri} did not come back inline`)
        const decoded = decodeSafetensors(new Uint8Array(Buffer.from(got.safetensorsBase64, 'base64')), { copy: true }).tensors
        tensors = decoded.size === 1 ? { '': [...decoded.values()][0]! } : Object.fromEntries(decoded)
        if (this.#outputs.size > 256) this.#outputs.clear()
        this.#outputs.set(uri, tensors)
      }
      for (const [k, t] of Object.entries(tensors)) out[k === '' ? name : `${name}/${k}`] = t
    }
    return out
  }

  /** The taskpack's precision class, from its manifest (fetched through the content service). */
  async #precisionOf (taskpack: string): Promise<PrecisionClass> {
    const known = this.#precision.get(taskpack)
    if (known !== undefined) return known
    let precision: PrecisionClass = 'standard'
    try {
      const content = this.#ctx.services.get<ContentService>('content')
      const cid = CID.parse(taskpack)
      await content.transfer.fetch(cid, { signal: AbortSignal.any([this.#ctx.signal, AbortSignal.timeout(30_000)]) })
      for await (const entry of content.store.unixfs.ls(cid)) {
        if (entry.name !== MANIFEST_FILE) continue
        const chunks: Uint8Array[] = []
        for await (const c of content.store.unixfs.cat(entry.cid)) chunks.push(c)
        precision = parseManifest(Buffer.concat(chunks).toString('utf8')).precision
      }
    } catch (err) {
      this.#ctx.log.warn({ err, taskpack }, 'reading the taskpack\'s precision class failed; comparing at standard precision')
    }
    this.#precision.set(taskpack, precision)
    return precision
  }

  /**
   * Whether `judged`'s result agrees with `reference`'s: equal roots, or both published and within
   * tolerance. undefined while an output set is unknown.
   */
  async #agree (d: Dispute, judged: Party, reference: Party): Promise<{ agree: boolean | undefined, reason: string }> {
    if (judged.root === reference.root) return { agree: true, reason: 'identical output roots' }
    const a = this.#outputsOf(d, judged).body
    const b = this.#outputsOf(d, reference).body
    if (a === undefined || b === undefined) return { agree: undefined, reason: 'outputs not published' }
    const cmp = compareOutputs(await this.#load(a.outputs), await this.#load(b.outputs), await this.#precisionOf(d.taskpack))
    return { agree: cmp.match, reason: cmp.reason }
  }

  /** The first primary attempt after the disputed one that revealed its result (the re-execution). */
  async #third (connection: Connection, d: Dispute): Promise<Party | undefined> {
    const info = await connection.getAccountInfo(taskStateOf(this.#programId, this.#executionAccount(d.executionId), d.taskId), 'confirmed')
    if (info === null) return undefined
    const chain = decodeTaskState(info.data)
    const from = d.verifier.attempt + 1
    const range = Array.from({ length: Math.max(0, Math.min(chain.nextAttempt, from + 16) - from) }, (_, i) => from + i)
    const found = await this.#assignments(connection, d.executionId, d.taskId, range)
    for (const a of [...found.values()].sort((x, y) => x.attempt - y.attempt)) {
      if (a.kind === AssignmentKind.Primary && a.status === AssignmentStatus.Revealed) return await this.#party(connection, a)
    }
    return undefined
  }

  async #decide (connection: Connection, d: Dispute): Promise<void> {
    const now = Date.now()
    if (now - d.openedAt > ABANDON_MS) {
      d.status = 'abandoned'
      d.reason = d.reason ?? 'no decision within the dispute window'
      this.#ctx.log.warn({ executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, reason: d.reason }, 'dispute abandoned')
      return
    }
    if (d.kind === 'verified-suspicious') {
      const v = this.#outputsOf(d, d.verifier)
      if (v.body === undefined) {
        if (now - d.evidenceSince < OUTPUTS_GRACE_MS) return
        return await this.#accuse(connection, d, 'verifier', v.lying
          ? 'the verifier said Match, but its published outputs do not hash to the output root it revealed'
          : 'the verifier said Match, but published no outputs for the different output root it revealed (lazy verification)')
      }
      const r = await this.#agree(d, d.asserter, d.verifier)
      if (r.agree === undefined) {
        if (now - d.evidenceSince < OUTPUTS_GRACE_MS) return
        d.reason = 'the asserter\'s outputs are unknown: the verifier\'s Match cannot be checked'
        return
      }
      if (r.agree) return this.#conclude(d, 'no-fraud', `roots differ but the outputs agree within tolerance (${r.reason})`)
      return await this.#accuse(connection, d, 'verifier', `the verifier said Match, but its own outputs disagree with the asserter's: ${r.reason}`)
    }
    // VERIFICATION_FAILED: the re-execution decides
    if (d.third === undefined) {
      d.third = await this.#third(connection, d)
      if (d.third === undefined) return
      d.evidenceSince = now
    }
    const t = d.third
    if (this.#outputsOf(d, t).body === undefined && t.root !== d.asserter.root && t.root !== d.verifier.root) {
      if (now - d.evidenceSince < OUTPUTS_GRACE_MS) return
      d.evidenceSince = now // keep waiting: without the re-execution's outputs nothing is decided
      d.reason = 'waiting for the re-execution\'s published outputs'
      return
    }
    let ta = await this.#agree(d, d.asserter, t)
    let tv = await this.#agree(d, d.verifier, t)
    const late = now - d.evidenceSince >= OUTPUTS_GRACE_MS
    if ((ta.agree === undefined || tv.agree === undefined) && !late) return
    // a party that withheld its outputs cannot show that they agree
    if (ta.agree === undefined) ta = { agree: false, reason: 'the asserter published no outputs for its revealed root' }
    if (tv.agree === undefined) tv = { agree: false, reason: 'the verifier published no outputs for its revealed root' }
    const summary = `re-execution (attempt ${t.attempt} on ${t.peer}) vs asserter: ${ta.reason}; vs verifier: ${tv.reason}`
    if (tv.agree === true && ta.agree === false) return await this.#accuse(connection, d, 'asserter', `the re-execution agrees with the verifier, not the asserter; ${summary}`)
    if (ta.agree === true && tv.agree === false) return await this.#accuse(connection, d, 'verifier', `the re-execution agrees with the asserter, not the verifier; ${summary}`)
    if (ta.agree === true && tv.agree === true) {
      const av = await this.#agree(d, d.asserter, d.verifier)
      if (av.agree === true) return await this.#accuse(connection, d, 'verifier', `the verifier said Mismatch, but its outputs agree with the asserter's (${av.reason})`)
      return this.#conclude(d, 'no-fraud', `the re-execution agrees with both within tolerance: inconclusive; ${summary}`)
    }
    const reason = `three-way disagreement: ${summary}`
    this.#conclude(d, 'nondeterministic', reason)
    this.#nondeterministic.push({ taskpack: d.taskpack, executionId: d.executionId, taskId: d.taskId, reason, at: now })
    this.#ctx.log.warn({ taskpack: d.taskpack, executionId: d.executionId, taskId: d.taskId, reason }, 'taskpack flagged nondeterministic: nobody is slashed')
    // no result of this task can be trusted: the execution ends here instead of re-running the task
    // until every node is blacklisted for it
    await this.#executions.apply(d.executionId, { type: 'aborted', at: now, reason: `task ${d.taskId}: taskpack ${d.taskpack} is nondeterministic (three runs gave three different results); nobody was slashed` })
      .catch(err => { this.#ctx.log.warn({ err, executionId: d.executionId }, 'aborting the execution failed') })
  }

  #conclude (d: Dispute, status: DisputeStatus, reason: string): void {
    d.status = status
    d.reason = reason
    d.decidedAt = Date.now()
    this.#ctx.log.info({ executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, status, reason }, 'dispute concluded without a slash')
  }

  async #accuse (connection: Connection, d: Dispute, role: AccusedRole, reason: string): Promise<void> {
    const accused = role === 'asserter' ? d.asserter : d.verifier
    d.accused = role
    d.reason = reason
    d.decidedAt = d.decidedAt ?? Date.now()
    d.slash = slashKey(d.executionId, d.taskId, d.asserter.attempt, accused.peer)
    d.fraudCompletedAt = this.#outputsOf(d, accused).body?.completedAtMs
    const node = await this.#node(connection, accused.nodeAccount)
    const address = slashAddress(this.#programId, this.#executionAccount(d.executionId), taskKey(d.taskId), d.asserter.attempt, accused.nodeAccount)[0]
    if (node.status !== NodeStatus.Active && await connection.getAccountInfo(address, 'confirmed') === null) {
      d.status = 'already-slashed'
      this.#ctx.log.info({ executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, accused: accused.peer, reason }, 'fraud found, but the accused node is already slashed (a node is slashed once)')
      return
    }
    d.stakeBefore = node.stake + node.unbonding
    d.status = 'voting'
    this.#ctx.log.info({ executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, accused: accused.peer, role, reason }, 'dispute decided: voting to slash')
    await this.#vote(connection, d, this.#ballotFor(d))
  }

  #anchor (d: Dispute): number {
    return Number(d.asserter.commitSlot > d.verifier.commitSlot ? d.asserter.commitSlot : d.verifier.commitSlot)
  }

  /** The ballot whose expiry (anchor + WINDOW × (ballot + 2)) is at least one window ahead of now. */
  #ballotFor (d: Dispute): number {
    const ahead = this.#executions.currentSlot + SLASH_WINDOW_SLOTS - this.#anchor(d)
    return Math.max(0, Math.ceil(ahead / SLASH_WINDOW_SLOTS) - 2)
  }

  async #vote (connection: Connection, d: Dispute, ballot: number): Promise<void> {
    const config = this.#settlement.config!
    const accused = d.accused === 'asserter' ? d.asserter : d.verifier
    const prover = d.accused === 'asserter' ? d.verifier : d.asserter
    const proverNode = await this.#node(connection, prover.nodeAccount)
    const bountyTo = associatedTokenAddress(proverNode.owner, config.stakeMint)
    const body = withSlashDigest({
      v: 1, oracle: this.#self, committeeEpoch: config.committeeEpoch.toString(), executionId: d.executionId, taskId: d.taskId,
      attempt: d.asserter.attempt, verifierAttempt: d.verifier.attempt, ballot, accused: accused.peer, prover: prover.peer,
      asserterCommitment: hex(d.asserter.commitment), verifierCommitment: hex(d.verifier.commitment),
      asserterOutputRoot: d.asserter.root, verifierOutputRoot: d.verifier.root, bountyTo: hex(bountyTo.toBytes()),
      expirySlot: this.#anchor(d) + SLASH_WINDOW_SLOTS * (ballot + 2), reason: (d.reason ?? '').slice(0, 500)
    }, publicKeyOfPeer, this.digestOf)
    const data = encodeSlashVote(body, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    const own = this.validateVote(data, this.#self, Date.now())
    if (own.result !== 'accept') {
      this.#ctx.log.warn({ reason: own.reason, slash: d.slash }, 'own slash vote does not validate')
      return
    }
    this.handleVote(own.value)
    const voted = this.#voted.get(d.slash!) ?? new Set<number>()
    voted.add(ballot)
    this.#voted.set(d.slash!, voted)
    this.#trackFrom(body, d.accused!, accused.nodeAccount, d.stakeBefore)
    await this.#ctx.gossip.publish('committee', data)
    this.#ctx.log.info({ slash: d.slash, ballot, expirySlot: body.expirySlot, accused: body.accused }, 'slash vote published')
  }

  #trackFrom (body: SlashVoteBody, role: AccusedRole, accusedNode: PublicKey, stakeBefore: bigint | undefined): SlashTrack {
    const key = slashKeyOf(body)
    let track = this.#tracks.get(key)
    if (track === undefined) {
      track = {
        key, body, accusedNode, accusedRole: role, status: 'voting', stakeBefore, account: undefined, stakeAfter: undefined,
        address: slashAddress(this.#programId, this.#executionAccount(body.executionId), taskKey(body.taskId), body.attempt, accusedNode)[0],
        recordSignature: undefined, executeSignature: undefined, recordedSeenAt: undefined, executedSeenAt: undefined
      }
      this.#tracks.set(key, track)
    }
    if (track.stakeBefore === undefined) track.stakeBefore = stakeBefore
    return track
  }

  /** While voting: a new ballot when the own one nears expiry; join a later ballot other oracles opened. */
  async #revote (connection: Connection, d: Dispute): Promise<void> {
    const key = d.slash!
    const track = this.#tracks.get(key)
    if (track !== undefined && track.status !== 'voting') { d.status = track.status; return }
    const slot = this.#executions.currentSlot
    const collector = this.#collectorOf()
    if (collector?.quorum(key, slot + EXPIRY_MARGIN_SLOTS) !== undefined) return
    const voted = this.#voted.get(key) ?? new Set<number>()
    const newest = Math.max(-1, ...voted)
    for (const b of collector?.ballots(key) ?? []) {
      if (b.ballot > newest && !voted.has(b.ballot) && b.expirySlot > slot + EXPIRY_MARGIN_SLOTS) return await this.#vote(connection, d, b.ballot)
    }
    const expiry = this.#anchor(d) + SLASH_WINDOW_SLOTS * (newest + 2)
    if (expiry <= slot + EXPIRY_MARGIN_SLOTS) await this.#vote(connection, d, Math.max(newest + 1, this.#ballotFor(d)))
  }

  /** Sends Ed25519 + RecordSlash for a quorum when it is this oracle's turn. */
  async #maybeRecord (connection: Connection, key: string): Promise<void> {
    const track = this.#tracks.get(key)
    if (track !== undefined && track.status !== 'voting') return
    const q = this.#collectorOf()?.quorum(key, this.#executions.currentSlot + EXPIRY_MARGIN_SLOTS)
    if (q === undefined) return
    const b = q.body
    const programId = this.#programId
    const config = this.#settlement.configAddress!
    const accusedKey = publicKeyOfPeer(b.accused)
    const proverKey = publicKeyOfPeer(b.prover)
    if (accusedKey === undefined || proverKey === undefined) return
    const accusedNode = nodeAddress(programId, config, new PublicKey(accusedKey))[0]
    const t = track ?? this.#trackFrom(b, await this.#roleOf(connection, b, accusedNode), accusedNode, undefined)
    if (await connection.getAccountInfo(t.address, 'confirmed') !== null) { await this.#follow(connection, t); return }
    const now = Date.now()
    const scheduleKey = `slash:${key}`
    const first = this.#quorumAt.get(scheduleKey) ?? now
    this.#quorumAt.set(scheduleKey, first)
    const schedule = submitSchedule(scheduleKey, this.#members, this.#self, TAKEOVER_MS)
    if (schedule === undefined || now - first < schedule.firstAtMs) return
    const last = this.#lastSubmit.get(scheduleKey)
    if (last !== undefined && now - last < schedule.everyMs) return
    this.#lastSubmit.set(scheduleKey, now)

    const proverNode = nodeAddress(programId, config, new PublicKey(proverKey))[0]
    const execution = this.#executionAccount(b.executionId)
    const bountyTo = new PublicKey(Buffer.from(b.bountyTo, 'hex'))
    const operator = operatorKeypair(this.#ctx.identity)
    const stakeMint = this.#settlement.config!.stakeMint
    if (await connection.getAccountInfo(bountyTo, 'confirmed') === null) {
      const owner = (await this.#node(connection, proverNode)).owner
      if (!associatedTokenAddress(owner, stakeMint).equals(bountyTo)) throw new DisputeError('ERR_DISPUTE_EVIDENCE', 'the voted bounty account is not the prover owner\'s associated token account')
      await sendTransaction(connection, [createAssociatedTokenAccountIdempotent({ payer: operator.publicKey, owner, mint: stakeMint })], operator)
    }
    if (t.stakeBefore === undefined) {
      const n = await this.#node(connection, accusedNode)
      t.stakeBefore = n.stake + n.unbonding
    }
    const ed = ed25519Instruction(Buffer.from(q.digest, 'hex'), q.signatures.map(s => ({ publicKey: new PublicKey(publicKeyOfPeer(s.oracle)!), signature: s.signature })))
    const ix = recordSlash({
      programId, payer: operator.publicKey, config, execution, taskId: taskKey(b.taskId),
      asserterAssignment: assignmentAddress(programId, execution, taskKey(b.taskId), b.attempt)[0],
      verifierAssignment: assignmentAddress(programId, execution, taskKey(b.taskId), b.verifierAttempt)[0],
      attempt: b.attempt, accusedNode, proverNode, bountyTo, expirySlot: BigInt(b.expirySlot), slash: t.address
    })
    let sent: { signature: string }
    try {
      sent = await sendTransaction(connection, [ed, ix], operator)
    } catch (err) {
      // another oracle may have recorded it in the meantime
      if (await connection.getAccountInfo(t.address, 'confirmed') !== null) { await this.#follow(connection, t); return }
      throw new DisputeError('ERR_DISPUTE_SUBMIT', `RecordSlash refused: ${(err as Error).message}`, { cause: err })
    }
    t.recordSignature = sent.signature
    await this.#follow(connection, t)
    if (t.status === 'voting') throw new DisputeError('ERR_DISPUTE_SUBMIT', `RecordSlash ${sent.signature} confirmed but the slash account ${t.address.toBase58()} is not readable`)
    this.#ctx.log.info({ slash: key, account: t.address.toBase58(), signature: sent.signature, signers: q.signatures.length }, 'slash recorded on chain')
  }

  async #roleOf (connection: Connection, b: SlashVoteBody, accusedNode: PublicKey): Promise<AccusedRole> {
    const found = await this.#assignments(connection, b.executionId, b.taskId, [b.attempt])
    return found.get(b.attempt)?.node.equals(accusedNode) === true ? 'asserter' : 'verifier'
  }

  /** Reads a slash from the chain; executes it once the chain's clock passes the challenge delay. */
  async #follow (connection: Connection, t: SlashTrack): Promise<void> {
    const info = await connection.getAccountInfo(t.address, 'confirmed')
    if (info === null || !info.owner.equals(this.#programId)) return
    const s = decodeSlash(info.data)
    t.account = s
    const node = await this.#node(connection, t.accusedNode)
    if (s.status === SlashStatus.Recorded && t.status === 'voting') {
      if (node.status === NodeStatus.Active) throw new DisputeError('ERR_DISPUTE_EVIDENCE', `slash ${t.address.toBase58()} is recorded but the accused node is still active`)
      t.status = 'recorded'
      t.recordedSeenAt = Date.now()
      this.#syncDisputes(t)
    }
    if (s.status === SlashStatus.Executed) {
      if (node.status !== NodeStatus.SlashExecuted) throw new DisputeError('ERR_DISPUTE_EVIDENCE', `slash ${t.address.toBase58()} is executed but the accused node status is ${NodeStatus[node.status]}`)
      if (t.recordedSeenAt === undefined) t.recordedSeenAt = Date.now()
      t.status = 'executed'
      t.executedSeenAt = Date.now()
      t.stakeAfter = node.stake + node.unbonding
      this.#syncDisputes(t)
      this.#collector?.forget(t.key)
      this.#ctx.log.info({ slash: t.key, account: t.address.toBase58(), accused: t.body.accused, stakeBefore: t.stakeBefore?.toString(), stakeAfter: t.stakeAfter.toString(), amount: s.amount.toString(), bounty: s.bounty.toString() }, 'slash executed on chain')
      return
    }
    const clock = await chainUnixTime(connection)
    if (clock === undefined || clock < s.executableAt) return
    const scheduleKey = `execute:${t.key}`
    const now = Date.now()
    const first = this.#quorumAt.get(scheduleKey) ?? now
    this.#quorumAt.set(scheduleKey, first)
    const schedule = submitSchedule(scheduleKey, this.#members, this.#self, TAKEOVER_MS)
    if (schedule === undefined || now - first < schedule.firstAtMs) return
    const last = this.#lastSubmit.get(scheduleKey)
    if (last !== undefined && now - last < schedule.everyMs) return
    this.#lastSubmit.set(scheduleKey, now)
    const operator = operatorKeypair(this.#ctx.identity)
    const ix = executeSlash({ programId: this.#programId, config: this.#settlement.configAddress!, slash: t.address, accusedNode: t.accusedNode, bountyTo: s.bountyTo, treasury: this.#settlement.config!.treasury, vault: node.vault })
    try {
      t.executeSignature = (await sendTransaction(connection, [ix], operator)).signature
    } catch (err) {
      const again = await connection.getAccountInfo(t.address, 'confirmed')
      if (again !== null && decodeSlash(again.data).status === SlashStatus.Executed) return
      throw new DisputeError('ERR_DISPUTE_SUBMIT', `ExecuteSlash refused: ${(err as Error).message}`, { cause: err })
    }
  }

  #syncDisputes (t: SlashTrack): void {
    for (const d of this.#disputes.values()) if (d.slash === t.key && (d.status === 'voting' || d.status === 'recorded')) d.status = t.status
  }

  // ---- the requester's side ----

  /**
   * A sampled task needs a verification payment of R × price, while the escrow holds only the
   * expected cost (p × R × price per task): when more tasks are sampled than expected — and after a
   * failed verification, whose reassigned task is verified again — the escrow cannot cover the next
   * assignment (a verification, or a later task's primary attempt), and the requester's daemon adds
   * the shortfall. At most R × price per sampled attempt in total.
   */
  async #topUpOwn (connection: Connection): Promise<void> {
    const config = this.#settlement.config!
    for (const tracked of this.#executions.list()) {
      const s = tracked.state
      if (s.requester !== this.#self || isTerminalStatus(s.status)) continue
      for (const t of s.tasks) {
        // what the next assignment of this task will reserve: a verification, or a primary attempt
        const verification = t.state === 'PENDING_VERIFICATION' && t.verifier === null
        if (!verification && !s.ready.includes(t.taskId)) continue
        const key = attemptKey(s.executionId, t.taskId, t.nextAttempt)
        const last = this.#topUps.get(key)
        if (last === -1 || (last !== undefined && Date.now() - last < TOPUP_RETRY_MS)) continue
        this.#topUps.set(key, Date.now())
        const marker = new Key(`/bitflow/escrow-topups/${createHash('sha256').update(key).digest('hex')}`)
        if (await this.#ctx.datastore.has(marker)) { this.#topUps.set(key, -1); continue }
        try {
          const execution = this.#executionAccount(s.executionId)
          const info = await connection.getAccountInfo(execution, 'confirmed')
          if (info === null) continue
          const e = decodeExecution(info.data)
          const entry = e.tasks.find(x => hex(x.taskId) === hex(taskKey(t.taskId)))
          if (entry === undefined) continue
          // cancelled (maybe by a cancel that landed after this daemon's view of the task) or paid:
          // no attempt will need it, and tokens put into the escrow now stay there until it closes
          if ((entry.flags & (TaskFlag.Cancelled | TaskFlag.Paid)) !== 0) { this.#topUps.set(key, -1); continue }
          const needed = verification ? verificationPayment(config.params, entry.price) : entry.price
          const free = e.balance > e.reservedAmount ? e.balance - e.reservedAmount : 0n
          if (free >= needed) continue // covered for now (checked again while the task waits)
          const amount = needed - free
          const operator = operatorKeypair(this.#ctx.identity)
          const sent = await sendTransaction(connection, [topUp({ programId: this.#programId, funder: operator.publicKey, funderToken: associatedTokenAddress(operator.publicKey, config.stakeMint), execution, amount })], operator)
          await this.#ctx.datastore.put(marker, new TextEncoder().encode(sent.signature))
          this.#topUps.set(key, -1)
          this.#ctx.log.info({ executionId: s.executionId, taskId: t.taskId, attempt: t.nextAttempt, amount: amount.toString(), signature: sent.signature }, 'escrow topped up for the verification of a sampled task')
        } catch (err) {
          this.#once(`topup:${key}:${(err as Error).message}`, () => { this.#ctx.log.warn({ err, executionId: s.executionId, taskId: t.taskId }, 'topping up the escrow failed') })
        }
      }
    }
  }

  // ---- reporting ----

  /** Slashes (the chain's slash accounts, with what this daemon knows about them), disputes and nondeterministic taskpacks. */
  async report (executionId?: string): Promise<Record<string, unknown>> {
    const connection = this.#settlement.connection
    const config = this.#settlement.configAddress
    if (!this.#enabled || connection === undefined || config === undefined) throw new RpcError(RpcErrorCode.Unavailable, 'settlement is not configured on this daemon (--program-id)')
    const programId = this.#programId
    const execution = executionId !== undefined ? this.#executionAccount(executionId) : undefined
    const accounts = await connection.getProgramAccounts(programId, {
      commitment: 'confirmed',
      filters: [{ dataSize: SLASH_SIZE }, { memcmp: { offset: 8, bytes: config.toBase58() } }, ...(execution !== undefined ? [{ memcmp: { offset: 40, bytes: execution.toBase58() } }] : [])]
    })
    const byAccount = new Map([...this.#tracks.values()].map(t => [t.address.toBase58(), t]))
    const executions = this.#executions.list()
    const idOf = (account: PublicKey): TrackedExecution | undefined => executions.find(x => x.account === account.toBase58())
    const peerOfNode = (node: PublicKey): string | null => {
      const op = this.#settlement.registry().find(e => e.address === node.toBase58())?.node.operator
      return op !== undefined ? peerIdOfKey(op.toBytes()) : null
    }
    const slashes: Array<Record<string, unknown>> = []
    for (const a of accounts) {
      let s: SlashAccount
      try { s = decodeSlash(a.account.data) } catch { continue }
      const tracked = idOf(s.execution)
      const task = tracked?.state.tasks.find(x => hex(taskKey(x.taskId)) === hex(s.taskId))
      const t = byAccount.get(a.pubkey.toBase58())
      byAccount.delete(a.pubkey.toBase58())
      let stakeAfter = t?.stakeAfter
      if (stakeAfter === undefined && s.status === SlashStatus.Executed) {
        const info = await connection.getAccountInfo(s.accused, 'confirmed')
        if (info !== null) { const n = decodeNode(info.data); stakeAfter = n.stake + n.unbonding }
      }
      slashes.push({
        slash: a.pubkey.toBase58(), executionId: tracked?.state.executionId ?? t?.body.executionId ?? null, execution: s.execution.toBase58(),
        taskId: task?.taskId ?? t?.body.taskId ?? hex(s.taskId), attempt: s.attempt, accused: t?.body.accused ?? peerOfNode(s.accused),
        accusedNode: s.accused.toBase58(), accusedRole: t?.accusedRole ?? null, prover: t?.body.prover ?? null,
        status: s.status === SlashStatus.Executed ? 'executed' : 'recorded',
        amount: s.status === SlashStatus.Executed ? s.amount.toString() : null, bounty: s.status === SlashStatus.Executed ? s.bounty.toString() : null,
        bountyTo: s.bountyTo.toBase58(),
        stakeBefore: t?.stakeBefore?.toString() ?? (stakeAfter !== undefined ? (stakeAfter + s.amount).toString() : null),
        stakeAfter: stakeAfter?.toString() ?? null,
        recordedAt: Number(s.recordedAt), executableAt: Number(s.executableAt), reason: t?.body.reason ?? null,
        recordSignature: t?.recordSignature ?? null, executeSignature: t?.executeSignature ?? null
      })
    }
    for (const t of byAccount.values()) {
      if (executionId !== undefined && t.body.executionId !== executionId) continue
      slashes.push({
        slash: t.address.toBase58(), executionId: t.body.executionId, execution: this.#executionAccount(t.body.executionId).toBase58(), taskId: t.body.taskId,
        attempt: t.body.attempt, accused: t.body.accused, accusedNode: t.accusedNode.toBase58(), accusedRole: t.accusedRole, prover: t.body.prover,
        status: t.status, amount: null, bounty: null, bountyTo: new PublicKey(Buffer.from(t.body.bountyTo, 'hex')).toBase58(),
        stakeBefore: t.stakeBefore?.toString() ?? null, stakeAfter: null, recordedAt: null, executableAt: null, reason: t.body.reason,
        recordSignature: t.recordSignature ?? null, executeSignature: t.executeSignature ?? null
      })
    }
    const disputes = [...this.#disputes.values()].filter(d => executionId === undefined || d.executionId === executionId).map(d => {
      const track = d.slash !== undefined ? this.#tracks.get(d.slash) : undefined
      return {
        executionId: d.executionId, taskId: d.taskId, attempt: d.asserter.attempt, verifierAttempt: d.verifier.attempt, thirdAttempt: d.third?.attempt ?? null,
        kind: d.kind, status: d.status, accused: d.accused === undefined ? null : (d.accused === 'asserter' ? d.asserter.peer : d.verifier.peer),
        accusedRole: d.accused ?? null, reason: d.reason ?? null, openedAt: d.openedAt, decidedAt: d.decidedAt ?? null, fraudCompletedAt: d.fraudCompletedAt ?? null,
        recordedSeenAt: track?.recordedSeenAt ?? null, executedSeenAt: track?.executedSeenAt ?? null
      }
    })
    const nondeterministic = this.#nondeterministic.filter(n => executionId === undefined || n.executionId === executionId)
    return { slashes, disputes, nondeterministic }
  }

  #registerRpc (): void {
    this.#ctx.registry.add({
      name: 'bitflow_getSlashes',
      summary: 'Slashes on chain (accused node, amounts, stake before and after, status), optionally of one execution, with the disputes this daemon decided and taskpacks flagged nondeterministic',
      params: [param('executionId', Type.String(), { required: false, description: 'only this execution\'s slashes and disputes' })],
      result: { name: 'slashes', schema: SlashesResultSchema },
      mutating: false,
      handler: async p => await this.report(p.executionId as string | undefined)
    })
  }
}

function taskStateOf (programId: PublicKey, execution: PublicKey, taskId: string): PublicKey {
  return taskStateAddress(programId, execution, taskKey(taskId))[0]
}
