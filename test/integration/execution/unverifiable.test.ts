/**
 * Unverifiable dataset:// tasks on a test net (issue 8; DESIGN.md, Proof of Sampling: "a dataset://
 * task is verifiable only where at least two nodes hold the dataset"). 3 oracles, 2 nodes, 1
 * validator, every task sampled (samplingProbability 1). The demo model's input x is given as a
 * node-local dataset holding the same tensor file, so the execution's output must still equal the
 * reference.
 *  1. only node-1 holds the dataset: task 1 is assigned to node-1 as unverifiable (on chain: role
 *     Unverifiable, sampling fixed, reduced payment), runs on node-1's own copy of the data, is never
 *     sampled although p = 1, and is paid the reduced rate; tasks 2 and 3 are sampled and verified;
 *     the status says which task was unverifiable.
 *  2. validator-1 registers the same dataset: task 1 is now an ordinary primary attempt, sampled, and
 *     re-executed by validator-1 from its own copy; the execution completes with the reference output.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { mkdirSync, writeFileSync } from 'node:fs'
import { PublicKey, type Connection } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { buildDemoModel, demoTaskpackCid, prepareDemo, type PreparedDemo } from '../../../scripts/lib/demo-model.js'
import { chainConnection, nodeAccountOf, tokenBalance } from '../../../scripts/lib/slashing.js'
import { associatedTokenAddress } from '../../../programs/chain/spl.js'
import {
  assignmentAddress, decodeAssignment, decodeConfig, decodeExecution, decodeTaskState, escrowAddress, executionAddress, taskStateAddress,
  AssignmentKind, Sampling, TaskFlag, TaskStatus as ChainTaskStatus, type ConfigAccount
} from '../../../programs/client/index.js'
import { executionKey, taskKey } from '../../../protocols/execution/ids.js'
import type { BitflowClient } from '../../../daemon/rpc/client.js'
import { tempDir, cleanup, eventually } from '../../helpers/daemon.js'
import { expectReferenceOutput, finalStatus } from '../../helpers/execution.js'

const dir = tempDir('exec-unverifiable')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile | undefined
let requester: BitflowClient
let demo: PreparedDemo
let config: ConfigAccount
let connection: Connection
let datasetPath: string
const byName = (name: string): TestnetDaemon => file!.daemons.find(d => d.name === name)!

interface TaskStatus { taskId: string, task: number, status: string, attempt: number | null, assignedNode: string | null, unverifiable: boolean }
interface Status { overallStatus: string, taskStatuses: TaskStatus[], outputUris: Record<string, string | null>, reason: string | null }
interface Round { round: number, certified: boolean, table: Array<{ peerId: string, datasets: string[] }> }

beforeAll(async () => {
  const model = buildDemoModel(await demoTaskpackCid())
  file = await net.up({
    oracles: 3, nodes: 2, validators: 1, logLevel: 'info', specializationsFor: () => model.taskIds,
    settlement: { samplingProbability: 1 }
  })
  connection = chainConnection(file.chain!)
  config = decodeConfig((await connection.getAccountInfo(new PublicKey(file.chain!.config)))!.data)
  requester = net.client(byName('oracle-1'))
  demo = await prepareDemo(requester)
  expect(demo.modelId).toBe(model.modelId)
  // the private data: the demo's input tensor as a file that only its holders have
  mkdirSync(join(dir, 'private'), { recursive: true })
  datasetPath = join(dir, 'private', 'x.safetensors')
  writeFileSync(datasetPath, demo.demo.input.bytes)
}, 240_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(net.load()?.daemons.map(d => d.pid) ?? []), ...(file?.chain !== undefined ? [file.chain.pid] : [])], process.env.BITFLOW_KEEP_TEST_DIRS === '1' ? [] : [dir])
})

async function addDataset (d: TestnetDaemon): Promise<string> {
  const r = await net.client(d).call<{ record: { uri: string, id: string } }>('bitflow_addDataset', ['private-x', datasetPath])
  return r.record.uri
}

/**
 * Waits until every oracle's latest certified round lists `holder` with the dataset, and two more
 * rounds certified after it (assignments draw from a round certified two rounds back at the latest).
 */
async function advertisedEverywhere (holder: TestnetDaemon, id: string): Promise<void> {
  for (const oracle of file!.daemons.filter(d => d.role === 'oracle')) {
    const client = net.client(oracle)
    const seen = await eventually(`${oracle.name} to certify ${holder.name} holding the dataset`, async () => {
      const r = await client.call<Round>('bitflow_committeeRound', [])
      return r.certified && r.table.some(e => e.peerId === holder.peerId && e.datasets.includes(id)) ? r.round : undefined
    }, 60_000)
    await eventually(`${oracle.name} to certify two more rounds`, async () => {
      const r = await client.call<Round>('bitflow_committeeRound', [])
      return r.round >= seen + 2 ? true : undefined
    }, 60_000)
  }
}



const executionOf = (executionId: string): PublicKey => executionAddress(new PublicKey(file!.chain!.programId), new PublicKey(file!.chain!.config), executionKey(executionId))[0]

/** The requester's token account (escrows are funded from it and refunded to it). */
async function requesterTokenAccount (): Promise<PublicKey> {
  const owner = new PublicKey(byName('oracle-1').solanaAddress)
  return associatedTokenAddress(owner, decodeConfig((await connection.getAccountInfo(new PublicKey(file!.chain!.config)))!.data).stakeMint)
}

/** The on-chain task state and the attempts of one task. */
async function chainTask (executionId: string, taskId: string): Promise<{ sampling: Sampling, status: ChainTaskStatus, attempts: Array<ReturnType<typeof decodeAssignment>> }> {
  const programId = new PublicKey(file!.chain!.programId)
  const execution = executionAddress(programId, new PublicKey(file!.chain!.config), executionKey(executionId))[0]
  const state = decodeTaskState((await connection.getAccountInfo(taskStateAddress(programId, execution, taskKey(taskId))[0], 'confirmed'))!.data)
  const attempts = []
  for (let a = 0; a < state.nextAttempt; a++) {
    const info = await connection.getAccountInfo(assignmentAddress(programId, execution, taskKey(taskId), a)[0], 'confirmed')
    if (info !== null) attempts.push(decodeAssignment(info.data))
  }
  return { sampling: state.sampling, status: state.status, attempts }
}

describe('dataset:// tasks and verifiability', () => {
  it('runs a task whose dataset only one node holds as unverifiable: never sampled, paid the reduced rate, said in its status', async () => {
    const node1 = byName('node-1')
    const uri = await addDataset(node1)
    await advertisedEverywhere(node1, uri.slice('dataset://'.length))

    const requesterToken = await requesterTokenAccount()
    const tokensBefore = await tokenBalance(connection, requesterToken)
    const r = await requester.call<{ executionId: string, pricePerTask: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: { x: uri }, maxFee: '100000' }])
    const s = await finalStatus<Status>(requester, r.executionId, 240_000)
    await expectReferenceOutput(requester, s, demo.reference)

    const [t1, t2, t3] = [1, 2, 3].map(n => s.taskStatuses.find(t => t.task === n)!)
    expect(t1).toMatchObject({ status: 'VERIFIED', assignedNode: node1.peerId, unverifiable: true })
    expect(t2!.unverifiable).toBe(false)
    expect(t3!.unverifiable).toBe(false)

    const price = BigInt(r.pricePerTask)
    const c1 = await chainTask(r.executionId, t1!.taskId)
    // p = 1, yet no sampling decision and no verifier: one attempt, role Unverifiable, reduced pay, paid
    expect(c1.sampling).toBe(Sampling.Unverifiable)
    expect(c1.status).toBe(ChainTaskStatus.Verified)
    expect(c1.attempts.map(a => a.kind)).toEqual([AssignmentKind.Unverifiable])
    expect(c1.attempts[0]!.payment).toBe(price * BigInt(config.params.unverifiablePayBps) / 10_000n)
    expect(c1.attempts[0]!.payment).toBeLessThan(price)
    await eventually('node-1 to collect the unverifiable payment', async () => (await chainTask(r.executionId, t1!.taskId)).attempts[0]!.paid ? true : undefined, 30_000)
    // the tasks reading only ipfs:// tensors were sampled and re-executed as usual
    for (const t of [t2!, t3!]) {
      const c = await chainTask(r.executionId, t.taskId)
      expect(c.sampling).toBe(Sampling.Sampled)
      expect(c.attempts.map(a => a.kind)).toEqual([AssignmentKind.Primary, AssignmentKind.Verification])
      expect(c.attempts[0]!.payment).toBe(price)
    }

    // once every earned payment is collected, the requester's daemon closes the escrow: the requester
    // paid exactly what the nodes and the validator were paid, and the rest came back
    const account = executionOf(r.executionId)
    const closed = await eventually('the requester to close the escrow', async () => {
      const e = decodeExecution((await connection.getAccountInfo(account, 'confirmed'))!.data)
      return e.balance === 0n ? e : undefined
    }, 60_000)
    expect(closed.refundTo.toBase58()).toBe(requesterToken.toBase58())
    expect(closed.reservedAmount).toBe(0n)
    expect(closed.tasks.every(t => (t.flags & TaskFlag.Paid) !== 0)).toBe(true)
    expect(await tokenBalance(connection, escrowAddress(new PublicKey(file!.chain!.programId), account)[0])).toBe(0n)
    let paid = 0n
    for (const t of [t1!, t2!, t3!]) for (const a of (await chainTask(r.executionId, t.taskId)).attempts) if (a.paid) paid += a.payment
    expect(closed.deposited).toBeGreaterThan(paid)
    expect(tokensBefore - await tokenBalance(connection, requesterToken)).toBe(paid)
  }, 300_000)

  it('samples the same task once a validator holds the dataset too, and the validator re-executes it from its own copy', async () => {
    const validator = byName('validator-1')
    const uri = await addDataset(validator)
    await advertisedEverywhere(validator, uri.slice('dataset://'.length))

    const r = await requester.call<{ executionId: string, pricePerTask: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: { x: uri }, maxFee: '100000' }])
    const s = await finalStatus<Status>(requester, r.executionId, 240_000)
    await expectReferenceOutput(requester, s, demo.reference)
    const t1 = s.taskStatuses.find(t => t.task === 1)!
    expect(t1).toMatchObject({ status: 'VERIFIED', assignedNode: byName('node-1').peerId, unverifiable: false })
    const c1 = await chainTask(r.executionId, t1.taskId)
    expect(c1.sampling).toBe(Sampling.Sampled)
    expect(c1.attempts.map(a => a.kind)).toEqual([AssignmentKind.Primary, AssignmentKind.Verification])
    expect(c1.attempts[1]!.node.toBase58()).toBe(nodeAccountOf(file!.chain!, validator).toBase58())
    expect(c1.attempts[1]!.resolved).toBe(true)
  }, 300_000)
})
