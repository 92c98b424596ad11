/**
 * Settlement benchmark: transactions settled per second through the local chain server with an
 * unmodified web3.js Connection (send → finalized, i.e. persisted), and compute units per settlement
 * instruction from getTransaction: assignments with a 5-of-7 committee quorum, RegisterNode,
 * UpdateCapacity, and plain system transfers as the baseline through the same path.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Keypair, LAMPORTS_PER_SOL, PublicKey, SYSVAR_SLOT_HASHES_PUBKEY, SystemProgram, Transaction, type TransactionInstruction } from '@solana/web3.js'
import { loadavg } from 'node:os'
import {
  AssignmentKind, addStake, assign, assignmentDigest, attemptSeed, blacklistHash, canonicalBlacklist, configAddress, decodeConfig,
  decodeExecution, executionAddress, initializeConfig, nodeAddress, openExecution, quorumInstruction, registerNode, unbond,
  updateCapacity, type ExecutionTask, type Params
} from '../../programs/client/index.js'
import { airdrop, createStakeMint, fundOwners, sendAndConfirm, startLocalChain, type LocalChain } from '../../programs/chain/testnet.js'
import { signTransaction } from '../../programs/chain/signer.js'
import { base58Encode } from '../../programs/chain/codec.js'
import { percentile, type BenchResult, type Figure } from './report.js'
import { toProgramParams } from '../../daemon/settlement/params.js'
import { loadNetworkPreset } from '../../daemon/preset.js'

/** The `local` network's parameters, as the test net initializes its config. */
const PARAMS: Params = toProgramParams(loadNetworkPreset('local').settlement)

export interface SettlementBenchOptions {
  /** transactions per measured batch (default 300) */
  count?: number
  /** requests in flight (default 32) */
  concurrency?: number
  slotMs?: number
  /** progress lines (default: none) */
  onProgress?: (message: string) => void
}

const TASKS_PER_EXECUTION = 8

interface Throughput { perSecond: number, latencyP50: number, latencyP99: number, failed: number }

/**
 * Sends pre-signed transactions with `concurrency` requests in flight and polls
 * getSignatureStatuses until every one is finalized (durable). Latency = send → first seen finalized.
 */
async function settle (connection: Connection, wires: Buffer[], concurrency: number): Promise<Throughput> {
  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  let failed = 0
  let sendError: Error | undefined
  const started = performance.now()
  let next = 0
  let sendsDone = false
  const sendAll = Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < wires.length && sendError === undefined) {
      const wire = wires[next++]!
      const t = performance.now()
      const sig = await connection.sendRawTransaction(wire, { skipPreflight: false })
      sentAt.set(sig, t)
    }
  })).then(() => { sendsDone = true }, (err: Error) => { sendError = err; sendsDone = true })
  try {
    for (;;) {
      if (sendError !== undefined) throw new Error(`settlement bench: sending failed: ${sendError.message}`, { cause: sendError })
      const batch = [...sentAt.keys()].slice(0, 256)
      if (batch.length > 0) {
        const statuses = (await connection.getSignatureStatuses(batch)).value
        const now = performance.now()
        statuses.forEach((s, i) => {
          if (s?.confirmationStatus !== 'finalized') return
          const sig = batch[i]!
          latencies.push(now - sentAt.get(sig)!)
          sentAt.delete(sig)
          if (s.err !== null) failed++
        })
      }
      if (sendsDone && sentAt.size === 0) break
      if (performance.now() - started > 120_000) throw new Error(`settlement bench: ${sentAt.size} transactions not finalized after 120 s`)
      await sleep(10)
    }
  } finally {
    await sendAll
  }
  const seconds = (performance.now() - started) / 1000
  return { perSecond: wires.length / seconds, latencyP50: percentile(latencies, 50), latencyP99: percentile(latencies, 99), failed }
}

/** Median and maximum compute units over the first `n` transactions (PDA bump searches vary with the keys). */
async function computeUnitStats (connection: Connection, wires: Buffer[], n = 10): Promise<{ median: number, max: number }> {
  const units = await Promise.all(wires.slice(0, n).map(async w => await computeUnits(connection, firstSig(w))))
  return { median: percentile(units, 50), max: Math.max(...units) }
}

async function computeUnits (connection: Connection, signature: string): Promise<number> {
  const tx = await connection.getTransaction(signature, { commitment: 'confirmed', maxSupportedTransactionVersion: 0 })
  if (tx?.meta?.computeUnitsConsumed === undefined) throw new Error(`no compute units for ${signature}`)
  return tx.meta.computeUnitsConsumed
}

export async function benchSettlement (options: SettlementBenchOptions = {}): Promise<BenchResult> {
  const count = options.count ?? 300
  const concurrency = options.concurrency ?? 32
  const slotMs = options.slotMs ?? 100
  const progress = options.onProgress ?? (() => {})
  const dir = mkdtempSync(join(tmpdir(), 'bitflow-bench-settlement-'))
  let chain: LocalChain | undefined
  try {
    chain = await startLocalChain({ dir: join(dir, 'chain'), slotMs, logLevel: 'warn' })
    progress(`local chain at ${chain.rpcUrl}`)
    const connection = new Connection(chain.rpcUrl, 'confirmed')
    const programId = new PublicKey(chain.programId)
    const genesisHash = new PublicKey(chain.genesisHash).toBytes()
    const payer = Keypair.generate()
    await airdrop(connection, payer.publicKey, 1000 * LAMPORTS_PER_SOL)
    const { mint, mintAuthority } = await createStakeMint(connection, { payer })
    const owners = Array.from({ length: count }, () => Keypair.generate())
    const operators = Array.from({ length: count }, () => Keypair.generate())
    const treasuryOwner = Keypair.generate()
    const requester = Keypair.generate()
    const funded = await fundOwners(connection, {
      payer, mint, mintAuthority,
      owners: [
        ...owners.map(o => ({ owner: o.publicKey, lamports: LAMPORTS_PER_SOL / 100, tokens: 3_000_000_000n })),
        { owner: treasuryOwner.publicKey },
        { owner: requester.publicKey, lamports: LAMPORTS_PER_SOL, tokens: 1_000_000_000_000n }
      ]
    })
    const treasuryToken = funded[count]!.tokenAccount
    const requesterToken = funded[count + 1]!.tokenAccount
    progress(`funded ${count} owners`)
    const config = configAddress(programId, genesisHash)[0]
    const committeeKeys = Array.from({ length: 7 }, () => Keypair.generate())
    const committee = committeeKeys.map(k => k.publicKey)
    const cu: Record<string, number> = {}
    cu.InitializeConfig = await computeUnits(connection, await sendAndConfirm(connection, [initializeConfig({
      programId, payer: payer.publicKey, genesisHash, stakeMint: mint, treasury: treasuryToken, committee, params: PARAMS
    })], payer))

    const signed = async (build: (i: number) => { ixs: TransactionInstruction[], signers: Keypair[] }): Promise<Buffer[]> => {
      const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash()
      return Array.from({ length: count }, (_, i) => {
        const { ixs, signers } = build(i)
        const tx = new Transaction({ feePayer: payer.publicKey, blockhash, lastValidBlockHeight }).add(...ixs)
        return signTransaction(tx, [payer, ...signers])
      })
    }
    const specs = Array.from({ length: TASKS_PER_EXECUTION }, (_, j) => createHash('sha256').update(`bench/task/${j}`).digest())

    // baseline: plain System transfers through the same server and path
    const transfers = await signed(i => ({ ixs: [SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: owners[i]!.publicKey, lamports: 1000 + i })], signers: [] }))
    const baseline = await settle(connection, transfers, concurrency)
    progress(`transfers: ${baseline.perSecond.toFixed(1)} tx/s`)

    const registers = await signed(i => ({
      ixs: [registerNode({ programId, config, owner: owners[i]!.publicKey, operator: operators[i]!.publicKey, ownerToken: funded[i]!.tokenAccount, stakeMint: mint, amount: 2_000_000_000n, capacity: 4, specializations: specs })],
      signers: [owners[i]!, operators[i]!]
    }))
    const register = await settle(connection, registers, concurrency)
    progress(`RegisterNode: ${register.perSecond.toFixed(1)} tx/s`)
    const nodes = operators.map(op => nodeAddress(programId, config, op.publicKey)[0])
    const updates = await signed(i => ({ ixs: [updateCapacity({ programId, signer: operators[i]!.publicKey, node: nodes[i]!, capacity: 8 })], signers: [operators[i]!] }))
    const update = await settle(connection, updates, concurrency)

    progress(`UpdateCapacity: ${update.perSecond.toFixed(1)} tx/s`)

    // assignments: executions of TASKS_PER_EXECUTION tasks, each task assigned (attempt 0) to its own node
    const executions = Math.ceil(count / TASKS_PER_EXECUTION)
    const tasks: ExecutionTask[] = specs.map(taskId => ({ taskId, price: 1_000_000n, computeUnits: 1000 }))
    const executionIds = Array.from({ length: executions }, (_, e) => createHash('sha256').update(`bench/execution/${e}`).digest())
    await Promise.all(executionIds.map(async executionId => await sendAndConfirm(connection, [openExecution({
      programId, config, requester: requester.publicKey, requesterToken, stakeMint: mint, executionId, tasks
    })], payer, [requester])))
    const executionKeys = executionIds.map(id => executionAddress(programId, config, id)[0])
    const requestSlots = (await connection.getMultipleAccountsInfo(executionKeys)).map(a => decodeExecution(a!.data).requestSlot)
    const seedSlot = (e: number): bigint => requestSlots[e]! + BigInt(PARAMS.seedDelaySlots)
    const lastSeedSlot = requestSlots.reduce((m, s) => s > m ? s : m, 0n) + BigInt(PARAMS.seedDelaySlots)
    while (BigInt(await connection.getSlot()) <= lastSeedSlot) await sleep(slotMs / 2) // the seed slots' hashes must exist
    const slotHashData = (await connection.getAccountInfo(SYSVAR_SLOT_HASHES_PUBKEY))!.data
    const slotHashes = new Map<bigint, Uint8Array>()
    for (let i = 0, n = Number(slotHashData.readBigUInt64LE(0)); i < n; i++) slotHashes.set(slotHashData.readBigUInt64LE(8 + 40 * i), slotHashData.subarray(16 + 40 * i, 48 + 40 * i))
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    const expirySlot = BigInt(await connection.getSlot()) + 1000n
    const emptyBlacklist = canonicalBlacklist([])
    const assignments = await signed(i => {
      const e = Math.floor(i / TASKS_PER_EXECUTION)
      const taskId = specs[i % TASKS_PER_EXECUTION]!
      const slotHash = slotHashes.get(seedSlot(e))
      if (slotHash === undefined) throw new Error(`no SlotHashes entry for slot ${seedSlot(e)}`)
      const seed = attemptSeed({ genesisHash, executionId: executionIds[e]!, taskId, attempt: 0, slot: seedSlot(e), slotHash })
      const digest = assignmentDigest({
        programId, genesisHash, committeeEpoch: cfg.committeeEpoch, executionId: executionIds[e]!, taskId, attempt: 0,
        node: operators[i]!.publicKey, kind: AssignmentKind.Primary, blacklistHash: blacklistHash(emptyBlacklist), seed,
        livenessRound: 1n, computeUnits: 1000n, expirySlot
      })
      return {
        ixs: [
          quorumInstruction(digest, committeeKeys.slice(0, cfg.threshold)),
          assign({ programId, payer: payer.publicKey, config, execution: executionKeys[e]!, taskId, attempt: 0, kind: AssignmentKind.Primary, node: nodes[i]!, livenessRound: 1n, expirySlot, blacklist: emptyBlacklist })
        ],
        signers: []
      }
    })
    const assigned = await settle(connection, assignments, concurrency)
    progress(`assignments: ${assigned.perSecond.toFixed(1)} /s`)
    const assignUnits = await computeUnitStats(connection, assignments)
    cu[`Assign (${cfg.threshold}-of-${committee.length} quorum), median of 10 (max ${assignUnits.max})`] = assignUnits.median

    // compute units of the other stake instructions, from getTransaction
    const registerUnits = await computeUnitStats(connection, registers)
    cu[`RegisterNode (${specs.length} specializations), median of 10 (max ${registerUnits.max})`] = registerUnits.median
    cu.UpdateCapacity = (await computeUnitStats(connection, updates)).median
    cu.AddStake = await computeUnits(connection, await sendAndConfirm(connection, [addStake({ programId, owner: owners[0]!.publicKey, node: nodes[0]!, ownerToken: funded[0]!.tokenAccount, amount: 1_000_000n })], payer, [owners[0]!]))
    cu.Unbond = await computeUnits(connection, await sendAndConfirm(connection, [unbond({ programId, owner: owners[0]!.publicKey, config, node: nodes[0]!, amount: 1_000_000n })], payer, [owners[0]!]))
    cu['System transfer'] = await computeUnits(connection, firstSig(transfers[0]!))

    const figures: Figure[] = [
      { name: `assignments settled per second (${count}, each with a ${cfg.threshold}-of-${committee.length} Ed25519 quorum, send → finalized)`, value: assigned.perSecond, unit: 'assignments/s', baseline: { name: 'System transfers, same path', value: baseline.perSecond, unit: 'tx/s' } },
      { name: 'assignment latency p50 (send → finalized)', value: assigned.latencyP50, unit: 'ms', baseline: { name: 'slot time', value: slotMs, unit: 'ms' } },
      { name: `RegisterNode settled per second (${count} tx, ${concurrency} in flight, send → finalized)`, value: register.perSecond, unit: 'tx/s', baseline: { name: 'System transfers, same path', value: baseline.perSecond, unit: 'tx/s' } },
      { name: 'RegisterNode latency p50 (send → finalized)', value: register.latencyP50, unit: 'ms', baseline: { name: 'slot time', value: slotMs, unit: 'ms' } },
      { name: 'RegisterNode latency p99', value: register.latencyP99, unit: 'ms' },
      { name: 'UpdateCapacity settled per second', value: update.perSecond, unit: 'tx/s', baseline: { name: 'System transfers, same path', value: baseline.perSecond, unit: 'tx/s' } },
      ...Object.entries(cu).map(([name, value]) => ({ name: `compute units: ${name}`, value, unit: 'CU' }))
    ]
    const notes = [
      `Local chain server (LiteSVM) at ${slotMs} ms slots, one process on this machine; web3.js 1.98 Connection over HTTP; transactions pre-signed with Node's Ed25519.`,
      '"Settled" = reported finalized by getSignatureStatuses, which the server does only after the slot\'s ledger frame is fdatasync\'ed.',
      `Failed transactions: transfers ${baseline.failed}, RegisterNode ${register.failed}, UpdateCapacity ${update.failed}, assignments ${assigned.failed}.`,
      `Machine load average during the run: ${loadavg().map(l => l.toFixed(1)).join(' / ')} (1/5/15 min) on ${count} transactions per batch; throughput on a shared, loaded machine is a lower bound.`
    ]
    return { bench: 'settlement', figures, notes }
  } finally {
    await chain?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The transaction id: its first signature (after the 1-byte compact signature count). */
function firstSig (wire: Buffer): string {
  return base58Encode(wire.subarray(1, 65))
}
