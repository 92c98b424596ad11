import { createHash } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { canonicalJson } from '../canonical.js'
import { signingBytes } from '../envelope.js'
import { accept, ignore, reject, type Verdict } from '../validation.js'
import { Capacity, Hardware, NODE_STATUSES, SafeUint, isCanonicalSignature } from './heartbeat.js'

export const VIEW_KIND = 'committee-view'
export const CERT_KIND = 'committee-cert'
export const COMMITTEE_MAX_BYTES = 256 * 1024

/** One node as a committee member saw it: no local times, so views of one round can agree. */
export const TableEntry = Type.Object({
  peerId: Type.String({ minLength: 1, maxLength: 128 }),
  status: Type.Union([...NODE_STATUSES, 'offline' as const].map(s => Type.Literal(s))),
  bootEpoch: SafeUint(),
  seq: SafeUint(),
  capacity: Capacity,
  hardware: Hardware,
  specializations: Type.Array(Type.String({ maxLength: 128 }), { maxItems: 64 }),
  datasets: Type.Array(Type.String({ maxLength: 128 }), { maxItems: 256 }),
  software: Type.String({ maxLength: 64 }),
  roles: Type.Optional(Type.Array(Type.Union([Type.Literal('oracle'), Type.Literal('node'), Type.Literal('validator')]), { maxItems: 3, uniqueItems: true, description: 'the daemon\'s roles (verification is assigned to validators)' }))
}, { additionalProperties: false })
export type TableEntry = Static<typeof TableEntry>

export const ViewBody = Type.Object({
  v: Type.Literal(1),
  round: SafeUint(),
  oracle: Type.String({ minLength: 1, maxLength: 128 }),
  entries: Type.Array(TableEntry, { maxItems: 4096 })
}, { additionalProperties: false })
export type ViewBody = Static<typeof ViewBody>

export const CertBody = Type.Object({
  v: Type.Literal(1),
  round: SafeUint(),
  oracle: Type.String({ minLength: 1, maxLength: 128 }),
  tableHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  /** the oracles whose views were merged */
  merged: Type.Array(Type.String({ maxLength: 128 }), { maxItems: 7 }),
  table: Type.Array(TableEntry, { maxItems: 4096 })
}, { additionalProperties: false })
export type CertBody = Static<typeof CertBody>

const CommitteeMessage = Type.Union([
  Type.Object({ type: Type.Literal('view'), body: ViewBody, sig: Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('cert'), body: CertBody, sig: Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' }) }, { additionalProperties: false })
])
export type CommitteeMessage = { type: 'view', body: ViewBody } | { type: 'cert', body: CertBody }

const checkMessage = new Ajv({ strict: false }).compile(CommitteeMessage)

export function tableHash (round: number, genesisHash: string, table: TableEntry[]): string {
  return createHash('sha256').update(canonicalJson({ genesisHash, round, table })).digest('hex')
}

export function encodeCommitteeMessage (msg: CommitteeMessage, genesisHash: string, sign: (b: Uint8Array) => Uint8Array): Uint8Array {
  const kind = msg.type === 'view' ? VIEW_KIND : CERT_KIND
  const sig = Buffer.from(sign(signingBytes(kind, genesisHash, msg.body))).toString('base64')
  return new TextEncoder().encode(JSON.stringify({ type: msg.type, body: msg.body, sig }))
}

export interface CommitteeContext {
  genesisHash: string
  members: ReadonlySet<string>
  currentRound: number
  publicKeyOf: (peerId: string) => Uint8Array | undefined
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
}

/**
 * Validates a committee message (a view or a certification vote). Messages from non-members,
 * with bad signatures, malformed or oversized, or whose table does not hash to the claimed hash
 * are rejected; messages for rounds too old or too far ahead are ignored.
 */
export function validateCommitteeMessage (data: Uint8Array, from: string, ctx: CommitteeContext): Verdict<CommitteeMessage> {
  if (data.length > COMMITTEE_MAX_BYTES) return reject(`committee message of ${data.length} bytes exceeds ${COMMITTEE_MAX_BYTES}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    return reject('committee message is not UTF-8 JSON')
  }
  if (!checkMessage(parsed)) return reject(`committee message does not match the schema: ${checkMessage.errors?.[0]?.message ?? ''}`)
  const msg = parsed as { type: 'view' | 'cert', body: ViewBody | CertBody, sig: string }
  if (!isCanonicalSignature(msg.sig)) return reject('committee message signature is not canonical base64')
  if (msg.body.oracle !== from) return reject('committee message signed for another oracle than its publisher')
  if (!ctx.members.has(from)) return reject('committee message from a peer that is not a committee member')
  const key = ctx.publicKeyOf(from)
  const kind = msg.type === 'view' ? VIEW_KIND : CERT_KIND
  if (key === undefined || !ctx.verify(key, signingBytes(kind, ctx.genesisHash, msg.body), Buffer.from(msg.sig, 'base64'))) {
    return reject('committee message signature is invalid for this network')
  }
  if (msg.body.round < ctx.currentRound - 3 || msg.body.round > ctx.currentRound + 1) return ignore('committee message for a round outside the window')
  if (msg.type === 'cert') {
    const cert = msg.body as CertBody
    if (tableHash(cert.round, ctx.genesisHash, cert.table) !== cert.tableHash) return reject('certification vote whose table does not hash to its tableHash')
    return accept({ type: 'cert', body: cert })
  }
  return accept({ type: 'view', body: msg.body as ViewBody })
}

const cmpStr = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
const cmpRecord = (a: TableEntry, b: TableEntry): number => b.bootEpoch - a.bootEpoch || b.seq - a.seq

/**
 * The deterministic merge of one round's views. A node is in the table when at least `threshold`
 * views list it; it is online when at least `threshold` views see it online. Its record is the one
 * with the highest (boot epoch, sequence) that at least `threshold` of those views reached; when
 * several views hold different records for that same (epoch, seq) — only a lying member can cause
 * that — the most common wins, then the smallest canonical encoding.
 */
export function mergeViews (views: ViewBody[], threshold: number): TableEntry[] {
  const byNode = new Map<string, TableEntry[]>()
  for (const view of views) {
    const seen = new Set<string>()
    for (const entry of view.entries) {
      if (seen.has(entry.peerId)) continue // a view lists a node once
      seen.add(entry.peerId)
      byNode.set(entry.peerId, [...(byNode.get(entry.peerId) ?? []), entry])
    }
  }
  const table: TableEntry[] = []
  for (const [peerId, listed] of byNode) {
    if (listed.length < threshold) continue
    const online = listed.filter(e => e.status !== 'offline')
    const pool = online.length >= threshold ? online : listed
    const sorted = [...pool].sort(cmpRecord)
    const pivot = sorted[threshold - 1]!
    const same = pool.filter(e => e.bootEpoch === pivot.bootEpoch && e.seq === pivot.seq)
    const counts = new Map<string, { entry: TableEntry, n: number }>()
    for (const e of same) {
      const key = canonicalJson(e)
      counts.set(key, { entry: e, n: (counts.get(key)?.n ?? 0) + 1 })
    }
    const [bestKey, best] = [...counts.entries()].sort((a, b) => b[1].n - a[1].n || cmpStr(a[0], b[0]))[0]!
    void bestKey
    const record = { ...best.entry, peerId }
    if (pool !== online) record.status = 'offline'
    table.push(record)
  }
  return table.sort((a, b) => cmpStr(a.peerId, b.peerId))
}

export interface CertifiedRound {
  round: number
  tableHash: string
  signers: string[]
  table: TableEntry[]
}

interface RoundState {
  views: Map<string, { hash: string, body: ViewBody }>
  certs: Map<string, { hash: string, body: CertBody }>
  equivocators: Set<string>
}

export type AddResult = 'added' | 'duplicate' | 'equivocation'

/**
 * Views and votes per round, with equivocation detection: a member that signs two different views
 * (or two different votes) in one round is ignored for that whole round.
 */
export class CommitteeRounds {
  readonly #threshold: number
  readonly #rounds = new Map<number, RoundState>()
  readonly #certified = new Map<number, CertifiedRound>()

  constructor (threshold: number) {
    this.#threshold = threshold
  }

  get threshold (): number { return this.#threshold }

  #state (round: number): RoundState {
    let s = this.#rounds.get(round)
    if (s === undefined) {
      s = { views: new Map(), certs: new Map(), equivocators: new Set() }
      this.#rounds.set(round, s)
    }
    return s
  }

  addView (view: ViewBody): AddResult {
    const s = this.#state(view.round)
    const hash = createHash('sha256').update(canonicalJson(view)).digest('hex')
    const existing = s.views.get(view.oracle)
    if (existing !== undefined) {
      if (existing.hash === hash) return 'duplicate'
      s.equivocators.add(view.oracle)
      return 'equivocation'
    }
    s.views.set(view.oracle, { hash, body: view })
    return s.equivocators.has(view.oracle) ? 'equivocation' : 'added'
  }

  addCert (cert: CertBody): AddResult {
    const s = this.#state(cert.round)
    const existing = s.certs.get(cert.oracle)
    if (existing !== undefined) {
      if (existing.hash === cert.tableHash) return 'duplicate'
      s.equivocators.add(cert.oracle)
      this.#evaluate(cert.round)
      return 'equivocation'
    }
    s.certs.set(cert.oracle, { hash: cert.tableHash, body: cert })
    this.#evaluate(cert.round)
    return s.equivocators.has(cert.oracle) ? 'equivocation' : 'added'
  }

  /** The views of a round that count: one per honest member. */
  views (round: number): ViewBody[] {
    const s = this.#rounds.get(round)
    if (s === undefined) return []
    return [...s.views.entries()].filter(([oracle]) => !s.equivocators.has(oracle)).map(([, v]) => v.body).sort((a, b) => cmpStr(a.oracle, b.oracle))
  }

  equivocators (round: number): string[] {
    return [...(this.#rounds.get(round)?.equivocators ?? [])].sort()
  }

  #evaluate (round: number): void {
    const s = this.#rounds.get(round)!
    const tally = new Map<string, CertBody[]>()
    for (const [oracle, c] of s.certs) {
      if (s.equivocators.has(oracle)) continue
      tally.set(c.hash, [...(tally.get(c.hash) ?? []), c.body])
    }
    for (const [hash, votes] of tally) {
      if (votes.length >= this.#threshold) {
        this.#certified.set(round, { round, tableHash: hash, signers: votes.map(v => v.oracle).sort(), table: votes[0]!.table })
        return
      }
    }
    this.#certified.delete(round)
  }

  certified (round: number): CertifiedRound | undefined {
    return this.#certified.get(round)
  }

  /** Votes seen for a round, by table hash (for reporting an uncertified round). */
  tally (round: number): Array<{ tableHash: string, signers: string[] }> {
    const s = this.#rounds.get(round)
    if (s === undefined) return []
    const tally = new Map<string, string[]>()
    for (const [oracle, c] of s.certs) if (!s.equivocators.has(oracle)) tally.set(c.hash, [...(tally.get(c.hash) ?? []), oracle])
    return [...tally.entries()].map(([tableHash, signers]) => ({ tableHash, signers: signers.sort() })).sort((a, b) => b.signers.length - a.signers.length)
  }

  latestCertified (): CertifiedRound | undefined {
    let best: CertifiedRound | undefined
    for (const c of this.#certified.values()) if (best === undefined || c.round > best.round) best = c
    return best
  }

  /** Forgets rounds older than `keepFrom`, except the latest certified one. */
  prune (keepFrom: number): void {
    const latest = this.latestCertified()?.round
    for (const round of this.#rounds.keys()) if (round < keepFrom && round !== latest) this.#rounds.delete(round)
    for (const round of this.#certified.keys()) if (round < keepFrom && round !== latest) this.#certified.delete(round)
  }
}
