/**
 * Execution requests on a daemon: how a requester's `maxFee` becomes per-task prices and an
 * escrow, and the append-only event log each execution keeps in the daemon's datastore.
 *
 * Fee rule (documented in README once the CLI lands): every task of the model gets the same price
 * `p`, the largest for which the escrow sum over tasks of taskShare(p) = p + ceil(p x R x samplingPpm)
 * (programs/client taskShare, exactly what the program charges) fits in `maxFee`. `p` must be at
 * least the network's minimum fee per task; otherwise the request is refused before anything is
 * sent to the chain.
 *
 * Event log: one datastore key per event, `/bitflow/execution/<hex executionKey>/<seq>` (seq zero
 * padded so keys sort in append order), the value the event as JSON. The first event is always the
 * execution's `requested` event, so the log replays with protocols/execution/state.ts `replay`.
 */
import { Key, type Datastore } from 'interface-datastore'
import { taskShare, type Params } from '../../programs/client/index.js'
import { executionKey, toHex } from '../../protocols/execution/ids.js'
import type { ExecutionEvent } from '../../protocols/execution/state.js'

export const EXECUTION_LOG_PREFIX = '/bitflow/execution'
const SEQ_WIDTH = 10

export interface FeeSplit {
  /** price of each task (stake-mint base units) */
  price: bigint
  /** what the escrow receives: taskCount x taskShare(price) */
  escrow: bigint
  /** the smallest maxFee that is accepted for this model */
  minimum: bigint
}

/** The minimum escrow for `taskCount` tasks on a network with `params`. */
export function minimumFee (params: Params, taskCount: number): bigint {
  return BigInt(taskCount) * taskShare(params, params.minFee)
}

/**
 * Splits `maxFee` over `taskCount` tasks (see the module comment); undefined when it is below the
 * minimum. taskShare is monotonic in the price, so a binary search finds the largest price.
 */
export function splitFee (params: Params, taskCount: number, maxFee: bigint): FeeSplit | undefined {
  if (taskCount < 1) return undefined
  const minimum = minimumFee(params, taskCount)
  if (maxFee < minimum) return undefined
  const n = BigInt(taskCount)
  let lo = params.minFee
  let hi = maxFee / n // taskShare(p) >= p, so p <= maxFee / n
  while (lo < hi) {
    const mid = (lo + hi + 1n) / 2n
    if (n * taskShare(params, mid) <= maxFee) lo = mid
    else hi = mid - 1n
  }
  return { price: lo, escrow: n * taskShare(params, lo), minimum }
}

/** Parses a decimal u64 amount; undefined when it is not one. */
export function parseAmount (value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value)) return undefined
  const v = BigInt(value)
  return v < 1n << 64n ? v : undefined
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The append-only per-execution event logs in the daemon datastore. */
export class ExecutionLog {
  readonly #ds: Datastore
  readonly #lengths = new Map<string, number>()
  /** appends to one execution are serialized so sequence numbers never collide */
  readonly #tails = new Map<string, Promise<void>>()

  constructor (datastore: Datastore) {
    this.#ds = datastore
  }

  static keyOf (executionId: string, seq: number): Key {
    return new Key(`${EXECUTION_LOG_PREFIX}/${toHex(executionKey(executionId))}/${String(seq).padStart(SEQ_WIDTH, '0')}`)
  }

  /** Appends an event; resolves once it is in the datastore. */
  async append (executionId: string, event: ExecutionEvent): Promise<number> {
    const prev = this.#tails.get(executionId) ?? Promise.resolve()
    let seq = 0
    const next = prev.then(async () => {
      seq = this.#lengths.get(executionId) ?? 0
      await this.#ds.put(ExecutionLog.keyOf(executionId, seq), enc.encode(JSON.stringify(event)))
      this.#lengths.set(executionId, seq + 1)
    })
    this.#tails.set(executionId, next.catch(() => {}))
    await next
    return seq
  }

  /** Every execution's events, in append order, grouped by execution id (from its requested event). */
  async loadAll (): Promise<Map<string, ExecutionEvent[]>> {
    const byKey = new Map<string, Array<{ seq: number, event: ExecutionEvent }>>()
    for await (const pair of this.#ds.query({ prefix: EXECUTION_LOG_PREFIX })) {
      const parts = pair.key.toString().split('/')
      const seq = Number(parts.at(-1))
      const hex = parts.at(-2)
      if (hex === undefined || !Number.isSafeInteger(seq)) continue
      let event: ExecutionEvent
      try { event = JSON.parse(dec.decode(pair.value)) as ExecutionEvent } catch { continue }
      const list = byKey.get(hex) ?? []
      list.push({ seq, event })
      byKey.set(hex, list)
    }
    const out = new Map<string, ExecutionEvent[]>()
    for (const list of byKey.values()) {
      list.sort((a, b) => a.seq - b.seq)
      const first = list[0]?.event
      if (first === undefined || first.type !== 'requested') continue
      out.set(first.executionId, list.map(x => x.event))
      this.#lengths.set(first.executionId, (list.at(-1)?.seq ?? -1) + 1)
    }
    return out
  }
}
