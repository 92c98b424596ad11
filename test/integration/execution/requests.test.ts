import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { Connection, PublicKey } from '@solana/web3.js'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { OPERATOR_TOKENS } from '../../../scripts/lib/testnet-chain.js'
import { configAddress, decodeConfig, decodeExecution, executionAddress, taskShare } from '../../../programs/client/index.js'
import { associatedTokenAddress } from '../../../programs/chain/spl.js'
import { executionKey, modelTaskId } from '../../../protocols/execution/ids.js'
import { genesisHash } from '../../../protocols/genesis.js'
import { createTensor, encodeSafetensors } from '../../../protocols/tensor/safetensors.js'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'
import type { BitflowClient } from '../../../daemon/rpc/client.js'
import type { PublishTaskpackResult, RegisterModelResult, PutTensorResult } from '../../../daemon/content/types.js'
import { tempDir, cleanup, eventually, rpcFailure } from '../../helpers/daemon.js'

const dir = tempDir('exec-req')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile
let connection: Connection
let programId: PublicKey
let config: PublicKey
let requester: BitflowClient
let modelId: string
let inputUri: string
const byName = (name: string): TestnetDaemon => file.daemons.find(d => d.name === name)!

interface Status {
  id: string, modelId: string, requestor: string, fee: string, overallStatus: string, reason: string | null
  inputUris: Record<string, string>, outputUris: Record<string, string | null>, readyTasks: string[]
  taskStatuses: Array<{ taskId: string, task: number, status: string, attempt: number | null, assignedNode: string | null, inputUris: Record<string, string | null>, outputUris: Record<string, string>, waiting?: string | null }>
  startTime: number, completionTime: number | null, requestSlot: number, account: string | null
}

const spec = (name: string) => ({ name, dimensions: ['n'], dtype: 'float32' })

async function balanceOf (d: TestnetDaemon): Promise<bigint> {
  const mint = new PublicKey(file.chain!.stakeMint)
  const r = await connection.getTokenAccountBalance(associatedTokenAddress(new PublicKey(d.solanaAddress), mint), 'confirmed')
  return BigInt(r.value.amount)
}

/**
 * oracle-1's tokens plus what it has deposited into ok-1, read at one slot: its daemon tops up the
 * escrow of ok-1 (requested by an earlier test, still running) whenever a sampled task needs it,
 * which moves tokens from one to the other at any moment.
 */
async function requesterFunds (): Promise<bigint> {
  const token = associatedTokenAddress(new PublicKey(byName('oracle-1').solanaAddress), new PublicKey(file.chain!.stakeMint))
  const [account, ok1] = await connection.getMultipleAccountsInfo([token, executionAddress(programId, config, executionKey('ok-1'))[0]], 'confirmed')
  // an SPL token account's amount: u64 little-endian after the mint and owner keys
  return Buffer.from(account!.data).readBigUInt64LE(64) + (ok1 != null ? decodeExecution(ok1.data).deposited : 0n)
}

beforeAll(async () => {
  file = await net.up({ oracles: 3, nodes: 1, validators: 1, logLevel: 'warn' })
  connection = new Connection(file.chain!.rpcUrl, 'confirmed')
  programId = new PublicKey(file.chain!.programId)
  config = configAddress(programId, Buffer.from(genesisHash(JSON.parse(readFileSync(file.genesisFile, 'utf8'))), 'hex'))[0]
  requester = net.client(byName('oracle-1'))
  const tp = join(dir, 'tp')
  await scaffoldTaskpack(tp, { type: 'analysis', name: 'exec-req' })
  const published = await requester.call<PublishTaskpackResult>('bitflow_publishTaskpack', [tp])
  // two tasks: x -> [1] -> h -> [2] -> y
  const model = {
    format: 'bitflow-model/1', name: 'two-step', description: '', creator: 'test',
    inputs: [spec('x')], outputs: [spec('y')],
    tasks: [
      { id: 1, description: 'a', taskpack: published.record.cid, computeUnits: 100, vramRequirement: 0, inputs: [spec('x')], outputs: [spec('h')] },
      { id: 2, description: 'b', taskpack: published.record.cid, computeUnits: 100, vramRequirement: 0, inputs: [spec('h')], outputs: [spec('y')] }
    ],
    connections: [
      { sourceTaskId: 0, destinationTaskId: 1, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('x') },
      { sourceTaskId: 1, destinationTaskId: 2, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('h') },
      { sourceTaskId: 2, destinationTaskId: 0, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('y') }
    ]
  }
  modelId = (await requester.call<RegisterModelResult>('bitflow_registerModel', [model])).modelId
  const tensor = encodeSafetensors({ x: createTensor('float32', [4], Float32Array.from([1, 2, 3, 4])) })
  inputUri = (await requester.call<PutTensorResult>('bitflow_putTensor', [{ safetensorsBase64: Buffer.from(tensor).toString('base64') }])).uri
}, 240_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(file?.daemons.map(d => d.pid) ?? []), ...(file?.chain !== undefined ? [file.chain.pid] : [])], [dir])
})

describe('bitflow_requestExecution', () => {
  it('test-net operators are funded for escrows', async () => {
    for (const d of file.daemons) expect(await balanceOf(d)).toBe(OPERATOR_TOKENS)
  })

  it('refuses an unknown model, a missing input and a fee below the minimum with clear errors, escrowing nothing', async () => {
    const before = await balanceOf(byName('oracle-1'))
    const nowhere = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('no such model'))).toString()
    const cases: Array<{ id: string, request: Record<string, unknown>, code: number, message: RegExp, dataCode: string }> = [
      { id: 'bad-model', request: { modelId: nowhere, inputs: { x: inputUri }, maxFee: '1000000' }, code: -32004, message: /unknown model/, dataCode: 'ERR_EXECUTION_UNKNOWN_MODEL' },
      { id: 'bad-input', request: { modelId, inputs: {}, maxFee: '1000000' }, code: -32602, message: /missing input 'x'/, dataCode: 'ERR_EXECUTION_BAD_INPUTS' },
      { id: 'bad-uri', request: { modelId, inputs: { x: 'http://example/x' }, maxFee: '1000000' }, code: -32602, message: /input 'x' has an invalid URI/, dataCode: 'ERR_EXECUTION_BAD_INPUTS' },
      { id: 'bad-fee', request: { modelId, inputs: { x: inputUri }, maxFee: '1' }, code: -32602, message: /below the minimum fee/, dataCode: 'ERR_EXECUTION_FEE_TOO_LOW' }
    ]
    for (const c of cases) {
      const err = await rpcFailure(requester.call('bitflow_requestExecution', [{ ...c.request, executionId: c.id }]))
      expect(err.code, c.id).toBe(c.code)
      expect(err.message, c.id).toMatch(c.message)
      expect((err.data as { code: string }).code, c.id).toBe(c.dataCode)
      expect(await connection.getAccountInfo(executionAddress(programId, config, executionKey(c.id))[0]), c.id).toBeNull()
    }
    expect(await balanceOf(byName('oracle-1'))).toBe(before)
  }, 60_000)

  it('escrows the fee on chain with the request slot, reports the status, and other daemons learn the request', async () => {
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    const before = await balanceOf(byName('oracle-1'))
    const maxFee = 50_000n
    const r = await requester.call<{ executionId: string, account: string, requestSlot: number, pricePerTask: string, escrowed: string }>('bitflow_requestExecution', [{ modelId, inputs: { x: inputUri }, maxFee: maxFee.toString(), executionId: 'ok-1' }])
    expect(r.executionId).toBe('ok-1')
    const price = BigInt(r.pricePerTask)
    const expected = 2n * taskShare(cfg.params, price)
    expect(BigInt(r.escrowed)).toBe(expected)
    expect(expected).toBeLessThanOrEqual(maxFee)
    // the largest price that fits
    expect(2n * taskShare(cfg.params, price + 1n)).toBeGreaterThan(maxFee)
    const account = executionAddress(programId, config, executionKey('ok-1'))[0]
    expect(r.account).toBe(account.toBase58())
    const onChain = decodeExecution((await connection.getAccountInfo(account))!.data)
    expect(onChain.deposited).toBe(expected)
    expect(onChain.requestSlot).toBe(BigInt(r.requestSlot))
    expect(onChain.requester.toBase58()).toBe(byName('oracle-1').solanaAddress)
    expect(onChain.tasks.map(t => t.price)).toEqual([price, price])
    expect(await balanceOf(byName('oracle-1'))).toBe(before - expected)

    const status = await requester.call<Status>('bitflow_getExecutionStatus', ['ok-1'])
    expect(status).toMatchObject({ id: 'ok-1', modelId, requestor: byName('oracle-1').peerId, fee: expected.toString(), overallStatus: 'pending', reason: null, inputUris: { x: inputUri }, outputUris: { y: null }, requestSlot: r.requestSlot, account: r.account, completionTime: null })
    expect(status.readyTasks).toEqual([modelTaskId(modelId, 1)])
    expect(status.taskStatuses.map(t => [t.taskId, t.status, t.assignedNode])).toEqual([[modelTaskId(modelId, 1), 'UNASSIGNED', null], [modelTaskId(modelId, 2), 'UNASSIGNED', null]])
    expect(status.taskStatuses[0]!.inputUris).toEqual({ x: inputUri })
    expect(status.taskStatuses[1]!.inputUris).toEqual({ h: null })

    // another daemon checks the announcement against the chain and tracks the execution
    const other = net.client(byName('oracle-2'))
    const seen = await eventually('oracle-2 to learn execution ok-1', async () => await other.call<Status>('bitflow_getExecutionStatus', ['ok-1']).catch(() => undefined), 30_000)
    expect(seen.fee).toBe(expected.toString())
    expect(seen.requestSlot).toBe(r.requestSlot)

    // unknown executions are not found
    const missing = await rpcFailure(requester.call('bitflow_getExecutionStatus', ['nope']))
    expect(missing.code).toBe(-32004)

    // an id already used is refused
    const dup = await rpcFailure(requester.call('bitflow_requestExecution', [{ modelId, inputs: { x: inputUri }, maxFee: '50000', executionId: 'ok-1' }]))
    expect(dup.code).toBe(-32602)
  }, 60_000)

  it('bitflow_cancelExecution refunds the unassigned tasks and records the cancellation; only the requester may cancel', async () => {
    const before = await requesterFunds()
    const r = await requester.call<{ executionId: string, escrowed: string }>('bitflow_requestExecution', [{ modelId, inputs: { x: inputUri }, maxFee: '20000', executionId: 'cancel-1' }])
    expect(await requesterFunds()).toBe(before - BigInt(r.escrowed))
    const other = net.client(byName('oracle-2'))
    await eventually('oracle-2 to learn cancel-1', async () => await other.call<Status>('bitflow_getExecutionStatus', ['cancel-1']).catch(() => undefined), 30_000)
    const refused = await rpcFailure(other.call('bitflow_cancelExecution', ['cancel-1']))
    expect(refused.code).toBe(-32002)
    const c = await requester.call<{ refundedTasks: number, status: string }>('bitflow_cancelExecution', ['cancel-1', 'changed my mind'])
    expect(c).toMatchObject({ refundedTasks: 2, status: 'cancelled' })
    expect(await requesterFunds()).toBe(before)
    // and nothing went back into the cancelled escrow (the requester's daemon used to top it up
    // for the next attempt of a task the cancel had just refunded)
    expect(decodeExecution((await connection.getAccountInfo(executionAddress(programId, config, executionKey('cancel-1'))[0]))!.data).balance).toBe(0n)
    const status = await requester.call<Status>('bitflow_getExecutionStatus', ['cancel-1'])
    expect(status.overallStatus).toBe('cancelled')
    expect(status.reason).toBe('changed my mind')
  }, 60_000)

  it('a restarted daemon replays its execution logs from the datastore', async () => {
    const before = await requester.call<Status>('bitflow_getExecutionStatus', ['ok-1'])
    const cancelled = await requester.call<Status>('bitflow_getExecutionStatus', ['cancel-1'])
    await net.stopDaemon('oracle-1', 'SIGKILL')
    const restarted = await net.startDaemon('oracle-1')
    file = { ...file, daemons: file.daemons.map(d => d.name === 'oracle-1' ? restarted : d) }
    requester = net.client(restarted)
    // the replayed state is the same; `waiting` is a live diagnostic of the coordinator, not state
    const state = (s: Status): Status => ({ ...s, taskStatuses: s.taskStatuses.map(t => ({ ...t, waiting: undefined })) })
    expect(state(await requester.call<Status>('bitflow_getExecutionStatus', ['ok-1']))).toEqual(state(before))
    expect(state(await requester.call<Status>('bitflow_getExecutionStatus', ['cancel-1']))).toEqual(state(cancelled))
  }, 90_000)
})
