/**
 * Assignment votes: collecting the committee's votes per (execution, task, attempt), finding a
 * quorum of matching digests, ignoring equivocators, and choosing which oracle submits the
 * settlement transaction.
 *
 * Ballots. Votes of one attempt are grouped by ballot (0, 1, ...). Within a ballot an oracle that
 * votes two different digests is an equivocator: all its votes in that ballot are ignored and it is
 * reported. When a ballot cannot reach a quorum any more (split) or expires, the oracles vote again
 * in the next ballot (typically with the newest certified liveness round and a new expiry) without
 * that counting as equivocation. Several ballots of one attempt can at worst yield several quorum
 * certificates for different digests of the same attempt; the settlement program creates the
 * assignment account of (execution, task, attempt) once, so at most one of them is ever settled and
 * there are never two live assignments for a task.
 *
 * Submitter. Every oracle ranks the committee by SHA-256("bitflow/submitter/v1\n" || attempt key ||
 * "\n" || oracle); the first submits as soon as it holds a quorum, the one ranked i takes over when
 * the assignment is still not settled i × takeoverMs later, wrapping around. All oracles compute
 * the same order, so normally exactly one transaction is sent and a missing submitter is covered.
 */
import { createHash } from 'node:crypto'
import { ExecutionError } from './errors.js'
import type { AssignmentVote, AssignmentVoteBody } from './messages.js'

export const DOMAIN_SUBMITTER = 'bitflow/submitter/v1'

/** Key of one attempt: ids cannot contain '|' (see ids.ts), so the key is unambiguous. */
export function attemptKey (executionId: string, taskId: string, attempt: number): string {
  return `${executionId}|${taskId}|${attempt}`
}

export type AddVoteResult = 'added' | 'duplicate' | 'equivocation' | 'not-member'

export interface DigestTally {
  digest: string
  /** voters of this digest, in committee order */
  oracles: string[]
}

export interface BallotTally {
  ballot: number
  /** 'quorum': a digest has threshold votes; 'split': no digest can reach threshold any more */
  status: 'collecting' | 'quorum' | 'split'
  /** most votes first, then by digest */
  digests: DigestTally[]
  equivocators: string[]
  /** members that have not voted in this ballot (equivocators excluded) */
  missing: string[]
}

export interface Quorum {
  executionId: string
  taskId: string
  attempt: number
  ballot: number
  digest: string
  /** the body of the first matching vote in committee order; every matching vote shares its digest fields */
  body: AssignmentVoteBody
  /** the matching votes' signatures over the digest, in committee order: the Ed25519 instruction's entries */
  signatures: Array<{ oracle: string, signature: Uint8Array }>
}

interface Ballot {
  votes: Map<string, AssignmentVote>
  equivocators: Set<string>
}

interface AttemptVotes {
  executionId: string
  taskId: string
  attempt: number
  ballots: Map<number, Ballot>
}

export class VoteCollector {
  readonly members: readonly string[]
  readonly threshold: number
  readonly #memberIndex: Map<string, number>
  readonly #attempts = new Map<string, AttemptVotes>()

  constructor (members: readonly string[], threshold: number) {
    if (new Set(members).size !== members.length) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'committee members must be distinct')
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > members.length) {
      throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', `threshold ${threshold} is not within 1..${members.length}`)
    }
    this.members = [...members]
    this.threshold = threshold
    this.#memberIndex = new Map(members.map((m, i) => [m, i]))
  }

  /** Adds a validated vote. */
  add (vote: AssignmentVote): AddVoteResult {
    const b = vote.body
    if (!this.#memberIndex.has(b.oracle)) return 'not-member'
    const key = attemptKey(b.executionId, b.taskId, b.attempt)
    let a = this.#attempts.get(key)
    if (a === undefined) {
      a = { executionId: b.executionId, taskId: b.taskId, attempt: b.attempt, ballots: new Map() }
      this.#attempts.set(key, a)
    }
    let ballot = a.ballots.get(b.ballot)
    if (ballot === undefined) {
      ballot = { votes: new Map(), equivocators: new Set() }
      a.ballots.set(b.ballot, ballot)
    }
    if (ballot.equivocators.has(b.oracle)) return 'equivocation'
    const existing = ballot.votes.get(b.oracle)
    if (existing !== undefined) {
      if (existing.body.digest === b.digest) return 'duplicate'
      ballot.votes.delete(b.oracle)
      ballot.equivocators.add(b.oracle)
      return 'equivocation'
    }
    ballot.votes.set(b.oracle, vote)
    return 'added'
  }

  #order = (a: string, b: string): number => this.#memberIndex.get(a)! - this.#memberIndex.get(b)!

  tally (executionId: string, taskId: string, attempt: number, ballot: number): BallotTally {
    const bl = this.#attempts.get(attemptKey(executionId, taskId, attempt))?.ballots.get(ballot)
    const votes = bl?.votes ?? new Map<string, AssignmentVote>()
    const equivocators = [...(bl?.equivocators ?? [])].sort(this.#order)
    const byDigest = new Map<string, string[]>()
    for (const [oracle, v] of votes) byDigest.set(v.body.digest, [...(byDigest.get(v.body.digest) ?? []), oracle])
    const digests = [...byDigest.entries()]
      .map(([digest, oracles]) => ({ digest, oracles: oracles.sort(this.#order) }))
      .sort((x, y) => y.oracles.length - x.oracles.length || (x.digest < y.digest ? -1 : x.digest > y.digest ? 1 : 0))
    const missing = this.members.filter(m => !votes.has(m) && !equivocators.includes(m))
    const best = digests[0]?.oracles.length ?? 0
    const status = best >= this.threshold ? 'quorum' : best + missing.length < this.threshold ? 'split' : 'collecting'
    return { ballot, status, digests, equivocators, missing }
  }

  /** Ballots seen for an attempt, ascending. */
  ballots (executionId: string, taskId: string, attempt: number): number[] {
    return [...(this.#attempts.get(attemptKey(executionId, taskId, attempt))?.ballots.keys() ?? [])].sort((a, b) => a - b)
  }

  /** The quorum of the lowest ballot that has one (and, given `minExpirySlot`, expires no earlier), or undefined. */
  quorum (executionId: string, taskId: string, attempt: number, minExpirySlot?: number, accept?: (body: AssignmentVoteBody) => boolean): Quorum | undefined {
    const a = this.#attempts.get(attemptKey(executionId, taskId, attempt))
    if (a === undefined) return undefined
    for (const ballot of this.ballots(executionId, taskId, attempt)) {
      const t = this.tally(executionId, taskId, attempt, ballot)
      if (t.status !== 'quorum') continue
      const winner = t.digests[0]!
      const votes = a.ballots.get(ballot)!.votes
      if (minExpirySlot !== undefined && votes.get(winner.oracles[0]!)!.body.expirySlot < minExpirySlot) continue
      if (accept !== undefined && !accept(votes.get(winner.oracles[0]!)!.body)) continue
      return {
        executionId,
        taskId,
        attempt,
        ballot,
        digest: winner.digest,
        body: votes.get(winner.oracles[0]!)!.body,
        signatures: winner.oracles.map(o => ({ oracle: o, signature: votes.get(o)!.digestSig }))
      }
    }
    return undefined
  }

  /** Each member's vote in the highest ballot it voted in for the attempt (equivocators left out). */
  latestVotes (executionId: string, taskId: string, attempt: number): AssignmentVote[] {
    const a = this.#attempts.get(attemptKey(executionId, taskId, attempt))
    if (a === undefined) return []
    const latest = new Map<string, AssignmentVote>()
    for (const ballot of this.ballots(executionId, taskId, attempt)) {
      for (const [oracle, vote] of a.ballots.get(ballot)!.votes) latest.set(oracle, vote)
    }
    return [...latest.values()]
  }

  /** Oracles that equivocated in any ballot of the attempt. */
  equivocators (executionId: string, taskId: string, attempt: number): string[] {
    const out = new Set<string>()
    for (const b of this.#attempts.get(attemptKey(executionId, taskId, attempt))?.ballots.values() ?? []) for (const o of b.equivocators) out.add(o)
    return [...out].sort(this.#order)
  }

  /** Drops the votes of an attempt (settled or superseded). */
  forgetAttempt (executionId: string, taskId: string, attempt: number): void {
    this.#attempts.delete(attemptKey(executionId, taskId, attempt))
  }

  /** Drops every vote of an execution (finished). */
  forgetExecution (executionId: string): void {
    for (const [k, a] of this.#attempts) if (a.executionId === executionId) this.#attempts.delete(k)
  }

  get size (): number { return this.#attempts.size }
}

/** The committee in the order in which its members submit the settlement of this attempt. */
export function submitterOrder (key: string, members: readonly string[]): string[] {
  const rank = new Map(members.map(m => [m, createHash('sha256').update(`${DOMAIN_SUBMITTER}\n${key}\n${m}`).digest('hex')]))
  return [...new Set(members)].sort((a, b) => {
    const x = rank.get(a)!
    const y = rank.get(b)!
    return x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0
  })
}

/**
 * When `self` should submit, in ms after it first held the quorum: rank × takeoverMs, then again
 * every members × takeoverMs while the assignment is still not settled (so a submission that was
 * lost is retried). undefined when `self` is not a member.
 */
export function submitSchedule (key: string, members: readonly string[], self: string, takeoverMs: number): { rank: number, firstAtMs: number, everyMs: number } | undefined {
  if (!(takeoverMs > 0)) throw new ExecutionError('ERR_EXECUTION_BAD_TIMING', 'takeoverMs must be positive')
  const order = submitterOrder(key, members)
  const rank = order.indexOf(self)
  if (rank < 0) return undefined
  return { rank, firstAtMs: rank * takeoverMs, everyMs: order.length * takeoverMs }
}

/** The oracle whose turn it is `elapsedMs` after the quorum was reached. */
export function submitterAt (key: string, members: readonly string[], elapsedMs: number, takeoverMs: number): string {
  if (!(takeoverMs > 0)) throw new ExecutionError('ERR_EXECUTION_BAD_TIMING', 'takeoverMs must be positive')
  const order = submitterOrder(key, members)
  if (order.length === 0) throw new ExecutionError('ERR_EXECUTION_BAD_VOTE', 'no committee members')
  return order[Math.floor(Math.max(0, elapsedMs) / takeoverMs) % order.length]!
}
