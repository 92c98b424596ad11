/**
 * Returns what is left in a finished execution's escrow to its requester: the requester's daemon
 * sends `close_execution` once the execution is terminal and the chain shows nothing reserved (every
 * attempt settled, every earned payment collected). What is left is the expected verification cost
 * of tasks that were not sampled, the unpaid share of unverifiable tasks, and the price of tasks that
 * failed or were never run.
 *
 * Executions whose escrow still holds reservations are re-checked with a growing interval; closed
 * ones (balance 0) are forgotten. The interval stays short (at most 30 s) because reads are batched.
 */
import { PublicKey, type Connection } from '@solana/web3.js'
import { closeExecution, decodeExecution } from '../../programs/client/index.js'
import { isTerminalStatus } from '../../protocols/execution/state.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { TrackedExecution } from '../services/execution.js'
import { operatorKeypair, sendTransaction } from './chain.js'

const FIRST_CHECK_MS = 2_000
const MAX_CHECK_MS = 30_000
/** accounts per getMultipleAccountsInfo request (the RPC limit is 100) */
const BATCH = 100

export interface EscrowCloserDeps {
  ctx: Pick<ServiceContext, 'identity' | 'log' | 'signal'>
  executions: () => Iterable<TrackedExecution>
  settlement: () => SettlementService
  programId: PublicKey
}

export class EscrowCloser {
  readonly #deps: EscrowCloserDeps
  /** executionId -> when to look next and the current interval */
  readonly #next = new Map<string, { at: number, everyMs: number }>()
  readonly #done = new Set<string>()
  #running = false

  constructor (deps: EscrowCloserDeps) {
    this.#deps = deps
  }

  /** One pass: reads the escrows due for a look and closes those with nothing reserved. */
  async step (): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      await this.#step()
    } finally {
      this.#running = false
    }
  }

  async #step (): Promise<void> {
    const settlement = this.#deps.settlement()
    const connection = settlement.connection
    const config = settlement.configAddress
    if (connection === undefined || config === undefined) return
    const self = this.#deps.ctx.identity.peerId.toString()
    const now = Date.now()
    const due: TrackedExecution[] = []
    for (const t of this.#deps.executions()) {
      const id = t.state.executionId
      if (this.#done.has(id) || t.account === '' || t.state.requester !== self || !isTerminalStatus(t.state.status)) continue
      const next = this.#next.get(id)
      if (next === undefined) this.#next.set(id, { at: now, everyMs: FIRST_CHECK_MS })
      if (next === undefined || next.at <= now) due.push(t)
    }
    for (let i = 0; i < due.length; i += BATCH) {
      this.#deps.ctx.signal.throwIfAborted()
      const batch = due.slice(i, i + BATCH)
      const infos = await connection.getMultipleAccountsInfo(batch.map(t => new PublicKey(t.account)), 'confirmed')
      for (const [k, t] of batch.entries()) {
        const info = infos[k]
        if (info === null || info === undefined) continue
        await this.#consider(connection, config, t, decodeExecution(info.data))
      }
    }
  }

  async #consider (connection: Connection, config: PublicKey, t: TrackedExecution, e: ReturnType<typeof decodeExecution>): Promise<void> {
    const id = t.state.executionId
    if (e.balance === 0n) { this.#forget(id); return }
    if (e.reservedAmount !== 0n) { this.#later(id); return }
    const operator = operatorKeypair(this.#deps.ctx.identity)
    try {
      const sent = await sendTransaction(connection, [closeExecution({ programId: this.#deps.programId, config, requester: operator.publicKey, execution: new PublicKey(t.account), refundTo: e.refundTo })], operator)
      this.#deps.ctx.log.info({ executionId: id, refunded: e.balance.toString(), signature: sent.signature }, 'escrow remainder returned to the requester (close_execution)')
      this.#forget(id)
    } catch (err) {
      this.#deps.ctx.log.debug({ err, executionId: id }, 'closing the escrow failed; will retry')
      this.#later(id)
    }
  }

  #later (id: string): void {
    const cur = this.#next.get(id) ?? { at: 0, everyMs: FIRST_CHECK_MS }
    const everyMs = Math.min(MAX_CHECK_MS, cur.everyMs * 2)
    this.#next.set(id, { at: Date.now() + everyMs, everyMs })
  }

  #forget (id: string): void {
    this.#done.add(id)
    this.#next.delete(id)
  }
}
