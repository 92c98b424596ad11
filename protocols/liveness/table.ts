import type { HeartbeatBody, NodeStatus, Capacity, Hardware } from './heartbeat.js'

export type LivenessStatus = NodeStatus | 'offline'

export interface LivenessEntry {
  peerId: string
  status: LivenessStatus
  /** what the node itself last reported, kept while it is offline */
  reportedStatus: NodeStatus
  bootEpoch: number
  seq: number
  lastSeenMs: number
  /** when the current status began */
  sinceMs: number
  capacity: Capacity
  hardware: Hardware
  specializations: string[]
  datasets: string[]
  software: string
  roles?: Array<'oracle' | 'node' | 'validator'>
}

export interface LivenessChange {
  peerId: string
  from: LivenessStatus | 'unknown'
  to: LivenessStatus
  atMs: number
  entry: LivenessEntry
}

export interface LivenessRules {
  heartbeatIntervalMs: number
  /** a node that missed this many consecutive heartbeats is offline */
  missedBeats: number
  /** an offline node must send this many heartbeats in a row (no gap) before it counts as online again */
  beatsToRecover: number
}

/**
 * The liveness table: pure state driven by accepted heartbeats and the clock, both passed in.
 * Hysteresis: online -> offline after `missedBeats` missed intervals; offline -> online only after
 * `beatsToRecover` consecutive heartbeats, so a flapping node does not bounce in and out.
 */
export class LivenessTable {
  readonly #rules: LivenessRules
  readonly #entries = new Map<string, LivenessEntry>()
  /** consecutive heartbeats received while offline */
  readonly #recovering = new Map<string, { count: number, lastMs: number }>()

  constructor (rules: LivenessRules) {
    this.#rules = rules
  }

  get rules (): LivenessRules { return this.#rules }

  lastSeen (peerId: string): { bootEpoch: number, seq: number, timestampMs: number } | undefined {
    const e = this.#entries.get(peerId)
    return e === undefined ? undefined : { bootEpoch: e.bootEpoch, seq: e.seq, timestampMs: e.lastSeenMs }
  }

  get (peerId: string): LivenessEntry | undefined {
    const e = this.#entries.get(peerId)
    return e === undefined ? undefined : { ...e }
  }

  entries (): LivenessEntry[] {
    return [...this.#entries.values()].map(e => ({ ...e })).sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  }

  /** Records an accepted heartbeat; returns the status change it caused, if any. */
  record (hb: HeartbeatBody, nowMs: number): LivenessChange | undefined {
    const previous = this.#entries.get(hb.peerId)
    const gapLimit = this.#rules.heartbeatIntervalMs * this.#rules.missedBeats
    let status: LivenessStatus = hb.status
    if (previous?.status === 'offline') {
      const streak = this.#recovering.get(hb.peerId)
      const count = streak !== undefined && nowMs - streak.lastMs <= gapLimit ? streak.count + 1 : 1
      if (count < this.#rules.beatsToRecover) {
        this.#recovering.set(hb.peerId, { count, lastMs: nowMs })
        status = 'offline'
      } else {
        this.#recovering.delete(hb.peerId)
      }
    }
    const entry: LivenessEntry = {
      peerId: hb.peerId,
      status,
      reportedStatus: hb.status,
      bootEpoch: hb.bootEpoch,
      seq: hb.seq,
      lastSeenMs: nowMs,
      sinceMs: previous !== undefined && previous.status === status ? previous.sinceMs : nowMs,
      capacity: hb.capacity,
      hardware: hb.hardware,
      specializations: [...hb.specializations],
      datasets: [...hb.datasets],
      software: hb.software,
      ...(hb.roles !== undefined ? { roles: [...hb.roles] } : {})
    }
    this.#entries.set(hb.peerId, entry)
    if (previous?.status === status) return undefined
    return { peerId: hb.peerId, from: previous?.status ?? 'unknown', to: status, atMs: nowMs, entry: { ...entry } }
  }

  /** Marks nodes offline whose last heartbeat is older than the allowed gap. */
  sweep (nowMs: number): LivenessChange[] {
    const gapLimit = this.#rules.heartbeatIntervalMs * this.#rules.missedBeats
    const changes: LivenessChange[] = []
    for (const entry of this.#entries.values()) {
      if (entry.status === 'offline') continue
      if (nowMs - entry.lastSeenMs > gapLimit) {
        const from = entry.status
        entry.status = 'offline'
        entry.sinceMs = nowMs
        this.#recovering.delete(entry.peerId)
        changes.push({ peerId: entry.peerId, from, to: 'offline', atMs: nowMs, entry: { ...entry } })
      }
    }
    return changes
  }

  /** Drops nodes offline for longer than `retainMs` (their identity may come back with a new epoch). */
  prune (nowMs: number, retainMs: number): void {
    for (const [peerId, entry] of this.#entries) {
      if (entry.status === 'offline' && nowMs - entry.sinceMs > retainMs) this.#entries.delete(peerId)
    }
  }
}

/** Token-bucket rate limit per peer, with time passed in. */
export class PeerRateLimiter {
  readonly #capacity: number
  readonly #refillPerMs: number
  readonly #buckets = new Map<string, { tokens: number, atMs: number }>()

  constructor (capacity: number, perIntervalMs: number) {
    this.#capacity = capacity
    this.#refillPerMs = 1 / perIntervalMs
  }

  take (peerId: string, nowMs: number): boolean {
    const b = this.#buckets.get(peerId) ?? { tokens: this.#capacity, atMs: nowMs }
    b.tokens = Math.min(this.#capacity, b.tokens + (nowMs - b.atMs) * this.#refillPerMs)
    b.atMs = nowMs
    if (this.#buckets.size > 100_000) this.#buckets.clear()
    this.#buckets.set(peerId, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
