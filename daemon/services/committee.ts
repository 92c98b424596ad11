import { Type } from '@sinclair/typebox'
import { committeeThreshold } from '../../protocols/genesis.js'
import { ed25519Verify } from '../../protocols/ed25519.js'
import {
  validateCommitteeMessage, encodeCommitteeMessage, mergeViews, tableHash, CommitteeRounds,
  type CommitteeMessage, type ViewBody, type TableEntry, type CertifiedRound
} from '../../protocols/liveness/committee.js'
import type { DaemonService, ServiceContext } from './service.js'
import type { LivenessService } from './liveness.js'
import { publicKeyOfPeer } from './liveness.js'
import { param } from '../rpc/registry.js'
import { peekMessageType, ASSIGNMENT_VOTE_KIND } from '../../protocols/execution/messages.js'
import { SLASH_VOTE_KIND } from '../../protocols/execution/slash-votes.js'
import { accept, ignore, type Verdict } from '../../protocols/validation.js'
import { CommitteeRoundSchema } from '../rpc/types.js'

/**
 * Messages of other protocols that share the committee topic (assignment votes of the execution
 * protocol): the committee service routes them by type to the service that registered the route.
 */
export interface CommitteeTopicRoute<T> {
  validate: (data: Uint8Array, from: string, nowMs: number) => Verdict<T>
  handle: (value: T, from: string) => void
}

interface Routed { routed: typeof ASSIGNMENT_VOTE_KIND | typeof SLASH_VOTE_KIND, value: unknown }

/** Within a round: views go out at 10% of it, each oracle merges at 60% and votes. */
const VIEW_AT = 0.1
const MERGE_AT = 0.6

export interface CommitteeRoundInfo {
  round: number
  tableHash: string | null
  certified: boolean
  signers: string[]
  threshold: number
  members: string[]
  equivocators: string[]
  table: TableEntry[]
}

/**
 * Committee rounds. Every daemon follows the votes and knows the certified rounds; oracles also
 * publish their signed view of the liveness table each round, merge the views by the deterministic
 * rule and vote on the hash of the result. A round is certified by `threshold` matching votes.
 */
export class CommitteeService implements DaemonService {
  readonly name = 'committee'
  readonly members: string[]
  readonly threshold: number
  readonly rounds: CommitteeRounds
  readonly #ctx: ServiceContext
  readonly #memberSet: Set<string>
  readonly #self: string
  readonly #isOracle: boolean
  readonly #listeners = new Set<(c: CertifiedRound) => void>()
  readonly #reportedEquivocation = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #voteRoute: CommitteeTopicRoute<unknown> | undefined
  #slashRoute: CommitteeTopicRoute<unknown> | undefined

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    this.members = ctx.genesis.committee.map(m => m.peerId)
    this.#memberSet = new Set(this.members)
    this.threshold = committeeThreshold(this.members.length)
    this.rounds = new CommitteeRounds(Math.max(1, this.threshold))
    this.#self = ctx.identity.peerId.toString()
    this.#isOracle = ctx.options.roles.includes('oracle') && this.#memberSet.has(this.#self)
    if (ctx.options.roles.includes('oracle') && !this.#isOracle) {
      ctx.log.warn('this daemon has the oracle role but is not a committee member in the genesis: it follows rounds without voting')
    }
    ctx.gossip.add<CommitteeMessage | Routed>({
      kind: 'committee',
      validate: (data, from, nowMs): Verdict<CommitteeMessage | Routed> => {
        if (peekMessageType(data) === SLASH_VOTE_KIND) {
          if (this.#slashRoute === undefined) return ignore('slash votes are not handled by this daemon')
          const v = this.#slashRoute.validate(data, from, nowMs)
          return v.result === 'accept' ? accept({ routed: SLASH_VOTE_KIND, value: v.value }) : v
        }
        if (peekMessageType(data) === ASSIGNMENT_VOTE_KIND) {
          const route = this.#voteRoute
          if (route === undefined) return ignore('assignment votes are not handled by this daemon')
          const v = route.validate(data, from, nowMs)
          return v.result === 'accept' ? accept({ routed: ASSIGNMENT_VOTE_KIND, value: v.value }) : v
        }
        return validateCommitteeMessage(data, from, {
          genesisHash: ctx.genesisHash,
          members: this.#memberSet,
          currentRound: this.roundAt(nowMs),
          publicKeyOf: publicKeyOfPeer,
          verify: ed25519Verify
        })
      },
      handle: (msg, from) => {
        if ('routed' in msg) (msg.routed === SLASH_VOTE_KIND ? this.#slashRoute : this.#voteRoute)?.handle(msg.value, from)
        else this.#receive(msg)
      }
    })
    this.#registerRpc()
  }

  /** Routes assignment votes on the committee topic to the execution service (one route). */
  routeAssignmentVotes<T> (route: CommitteeTopicRoute<T>): void {
    if (this.#voteRoute !== undefined) throw new Error('assignment votes are routed already')
    this.#voteRoute = route as CommitteeTopicRoute<unknown>
  }

  /** Routes slash votes on the committee topic to the dispute resolver (one route). */
  routeSlashVotes<T> (route: CommitteeTopicRoute<T>): void {
    if (this.#slashRoute !== undefined) throw new Error('slash votes are routed already')
    this.#slashRoute = route as CommitteeTopicRoute<unknown>
  }

  get roundIntervalMs (): number { return this.#ctx.preset.params.roundIntervalMs }
  roundAt (ms: number): number { return Math.floor(ms / this.roundIntervalMs) }

  onCertified (listener: (c: CertifiedRound) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  latestCertified (): CertifiedRound | undefined { return this.rounds.latestCertified() }

  start (): void {
    if (this.members.length === 0) {
      this.#ctx.log.warn('the genesis has no committee: no round can be certified')
      return
    }
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#listeners.clear()
  }

  /** Wakes at the next view or merge point of the wall-clock round grid. */
  #schedule (): void {
    if (this.#stopped) return
    const now = Date.now()
    const R = this.roundIntervalMs
    const round = this.roundAt(now)
    const offset = now - round * R
    let next: number
    let action: () => Promise<void>
    if (offset < VIEW_AT * R) {
      next = round * R + VIEW_AT * R
      action = async () => { await this.#publishView(round) }
    } else if (offset < MERGE_AT * R) {
      next = round * R + MERGE_AT * R
      action = async () => { await this.#mergeAndVote(round) }
    } else {
      next = (round + 1) * R + VIEW_AT * R
      action = async () => { await this.#publishView(round + 1) }
    }
    this.#timer = setTimeout(() => {
      const finishedRound = this.roundAt(Date.now()) - 1
      void action().catch(err => { this.#ctx.log.warn({ err }, 'committee step failed') }).finally(() => {
        this.#account(finishedRound)
        this.rounds.prune(this.roundAt(Date.now()) - 64)
        this.#schedule()
      })
    }, Math.max(0, next - now))
    this.#timer.unref()
  }

  #accounted = new Set<number>()
  /** Counts each finished round once as certified or not (metrics). */
  #account (round: number): void {
    if (round < 0 || this.#accounted.has(round)) return
    this.#accounted.add(round)
    if (this.#accounted.size > 256) this.#accounted.delete(Math.min(...this.#accounted))
    const certified = this.rounds.certified(round) !== undefined
    this.#ctx.metrics.committeeRounds.inc({ outcome: certified ? 'certified' : 'uncertified' })
  }

  /** The oracle's own view: the liveness table without local times. */
  ownView (round: number): ViewBody {
    const liveness = this.#ctx.services.get<LivenessService>('liveness')
    const entries: TableEntry[] = liveness.table.entries().map(e => ({
      peerId: e.peerId,
      status: e.status,
      bootEpoch: e.bootEpoch,
      seq: e.seq,
      capacity: e.capacity,
      hardware: e.hardware,
      specializations: e.specializations,
      datasets: e.datasets,
      software: e.software,
      ...(e.roles !== undefined ? { roles: e.roles } : {})
    }))
    return { v: 1, round, oracle: this.#self, entries }
  }

  async #publishView (round: number): Promise<void> {
    if (!this.#isOracle) return
    const view = this.ownView(round)
    this.#receive({ type: 'view', body: view })
    await this.#publish({ type: 'view', body: view })
    if (this.#ctx.options.byzantine === 'equivocate') {
      // a second, different view for the same round: honest members must ignore us for the round
      const forged: ViewBody = { ...view, entries: view.entries.slice(1) }
      await this.#publish({ type: 'view', body: forged })
    }
  }

  async #mergeAndVote (round: number): Promise<void> {
    if (!this.#isOracle) return
    const views = this.rounds.views(round)
    const table = mergeViews(views, this.rounds.threshold)
    const hash = tableHash(round, this.#ctx.genesisHash, table)
    const cert = { v: 1 as const, round, oracle: this.#self, tableHash: hash, merged: views.map(v => v.oracle), table }
    this.#receive({ type: 'cert', body: cert })
    await this.#publish({ type: 'cert', body: cert })
  }

  async #publish (msg: CommitteeMessage): Promise<void> {
    const data = encodeCommitteeMessage(msg, this.#ctx.genesisHash, b => this.#ctx.identity.sign(b))
    await this.#ctx.gossip.publish('committee', data)
    this.#ctx.metrics.committeePublished.inc({ type: msg.type })
  }

  #receive (msg: CommitteeMessage): void {
    const before = this.rounds.certified(msg.body.round)
    const result = msg.type === 'view' ? this.rounds.addView(msg.body) : this.rounds.addCert(msg.body)
    if (result === 'equivocation') {
      const key = `${msg.body.round}/${msg.body.oracle}`
      if (!this.#reportedEquivocation.has(key)) {
        this.#reportedEquivocation.add(key)
        if (this.#reportedEquivocation.size > 1024) this.#reportedEquivocation.clear()
        this.#ctx.metrics.committeeEquivocations.inc({ oracle: msg.body.oracle })
        this.#ctx.log.warn({ oracle: msg.body.oracle, round: msg.body.round, type: msg.type }, 'committee member equivocated: ignored for this round')
      }
    }
    const after = this.rounds.certified(msg.body.round)
    if (after !== undefined && after.tableHash !== before?.tableHash) {
      this.#ctx.metrics.committeeLastCertified.set(this.rounds.latestCertified()?.round ?? 0)
      this.#ctx.log.debug({ round: after.round, tableHash: after.tableHash, signers: after.signers.length }, 'round certified')
      for (const l of this.#listeners) l(after)
    }
  }

  roundInfo (round?: number): CommitteeRoundInfo {
    const base = { threshold: this.threshold, members: this.members }
    if (round === undefined) {
      const latest = this.rounds.latestCertified()
      if (latest === undefined) return { ...base, round: -1, tableHash: null, certified: false, signers: [], equivocators: [], table: [] }
      return { ...base, round: latest.round, tableHash: latest.tableHash, certified: true, signers: latest.signers, equivocators: this.rounds.equivocators(latest.round), table: latest.table }
    }
    const certified = this.rounds.certified(round)
    if (certified !== undefined) return { ...base, round, tableHash: certified.tableHash, certified: true, signers: certified.signers, equivocators: this.rounds.equivocators(round), table: certified.table }
    const leading = this.rounds.tally(round)[0]
    const views = this.rounds.views(round)
    const table = views.length > 0 ? mergeViews(views, this.rounds.threshold) : []
    return { ...base, round, tableHash: leading?.tableHash ?? null, certified: false, signers: leading?.signers ?? [], equivocators: this.rounds.equivocators(round), table }
  }

  #registerRpc (): void {
    this.#ctx.registry.add({
      name: 'bitflow_committeeRound',
      summary: 'A committee round: the latest certified one, or the given round (certified or not) with its merged liveness table',
      params: [param('round', Type.Integer({ minimum: 0 }), { required: false, description: 'round number; default the latest certified round' })],
      result: { name: 'round', schema: CommitteeRoundSchema },
      mutating: false,
      handler: p => this.roundInfo(p.round as number | undefined)
    })
    this.#ctx.hub.addTopic({
      name: 'committee',
      description: 'certified committee rounds as they certify',
      event: CommitteeRoundSchema,
      attach: (_params, emit) => this.onCertified(c => { emit(this.roundInfo(c.round)) })
    })
  }
}
