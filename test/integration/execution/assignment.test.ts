import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { Connection, PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { createHash } from 'node:crypto'
import { assignmentAddress, attemptSeed, configAddress, decodeAssignment, decodeConfig, decodeExecution, decodeNode, executionAddress, nodeAddress, NodeStatus, NODE_SIZE } from '../../../programs/client/index.js'
import { selectNodes, type Candidate } from '../../../protocols/execution/selection.js'
import type { TableEntry } from '../../../protocols/liveness/committee.js'
import { executionKey, modelTaskId, taskKey } from '../../../protocols/execution/ids.js'
import { genesisHash } from '../../../protocols/genesis.js'
import { createTensor, encodeSafetensors } from '../../../protocols/tensor/safetensors.js'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'
import { peerIdOfKey } from '../../../daemon/execution/coordinator.js'
import { readSlotHash } from '../../../daemon/execution/chain.js'
import type { BitflowClient } from '../../../daemon/rpc/client.js'
import type { PublishTaskpackResult, RegisterModelResult, PutTensorResult } from '../../../daemon/content/types.js'
import { tempDir, cleanup, eventually, spawnDaemon, type SpawnedDaemon } from '../../helpers/daemon.js'

const dir = tempDir('exec-assign')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile | undefined
let scratch: SpawnedDaemon | undefined
let requester: BitflowClient
let modelId: string
let inputUri: string
let requestSignature: string
const byName = (name: string): TestnetDaemon => file!.daemons.find(d => d.name === name)!
const spec = (name: string) => ({ name, dimensions: ['n'], dtype: 'float32' })
const tp = join(dir, 'tp')

function modelOf (taskpack: string): unknown {
  return {
    format: 'bitflow-model/1', name: 'two-step', description: '', creator: 'test',
    inputs: [spec('x')], outputs: [spec('y')],
    tasks: [
      { id: 1, description: 'a', taskpack, computeUnits: 100, vramRequirement: 0, inputs: [spec('x')], outputs: [spec('h')] },
      { id: 2, description: 'b', taskpack, computeUnits: 100, vramRequirement: 0, inputs: [spec('h')], outputs: [spec('y')] }
    ],
    connections: [
      { sourceTaskId: 0, destinationTaskId: 1, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('x') },
      { sourceTaskId: 1, destinationTaskId: 2, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('h') },
      { sourceTaskId: 2, destinationTaskId: 0, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: spec('y') }
    ]
  }
}

async function publishModel (client: BitflowClient): Promise<string> {
  const published = await client.call<PublishTaskpackResult>('bitflow_publishTaskpack', [tp])
  return (await client.call<RegisterModelResult>('bitflow_registerModel', [modelOf(published.record.cid)])).modelId
}

beforeAll(async () => {
  await scaffoldTaskpack(tp, { type: 'analysis', name: 'exec-assign' })
  // content addressing: a scratch daemon computes the model id, so the nodes can be registered as specialized in its tasks
  const genesisFile = join(dir, 'scratch-genesis.json')
  writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
  scratch = await spawnDaemon(join(dir, 'scratch'), ['--genesis-file', genesisFile, '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn', '--no-metrics'])
  modelId = await publishModel(scratch.client)
  await scratch.stop()
  const tasks = [modelTaskId(modelId, 1), modelTaskId(modelId, 2)]
  file = await net.up({ oracles: 3, nodes: 2, validators: 0, logLevel: 'warn', specializationsFor: () => tasks })
  requester = net.client(byName('oracle-1'))
  expect(await publishModel(requester)).toBe(modelId)
  const tensor = encodeSafetensors({ x: createTensor('float32', [4], Float32Array.from([1, 2, 3, 4])) })
  inputUri = (await requester.call<PutTensorResult>('bitflow_putTensor', [{ safetensorsBase64: Buffer.from(tensor).toString('base64') }])).uri
}, 240_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(file?.daemons.map(d => d.pid) ?? []), ...(file?.chain !== undefined ? [file.chain.pid] : []), ...(scratch !== undefined ? [scratch.pid] : [])], [dir])
})

interface Status { overallStatus: string, taskStatuses: Array<{ taskId: string, status: string, attempt: number | null, assignedNode: string | null, deadline: number | null }> }

describe('assignment by the oracle committee', () => {
  it('settles the first ready task on chain with a quorum of votes, and every oracle applies it', async () => {
    const events: Array<{ executionId: string, scope: string, from: string, to: string, taskId?: string }> = []
    const sub = await requester.subscribe<typeof events[number]>('execution', { executionId: 'assign-1' }, e => { events.push(e) })
    const r = await requester.call<{ executionId: string, signature: string }>('bitflow_requestExecution', [{ modelId, inputs: { x: inputUri }, maxFee: '50000', executionId: 'assign-1' }])
    requestSignature = r.signature
    const nodes = file!.daemons.filter(d => d.role === 'node').map(d => d.peerId)
    const status = await eventually('task 1 to be assigned', async () => {
      const s = await requester.call<Status>('bitflow_getExecutionStatus', [r.executionId])
      return s.taskStatuses[0]!.status === 'ASSIGNED' ? s : undefined
    }, 60_000)
    expect(status.overallStatus).toBe('in-progress')
    const t1 = status.taskStatuses[0]!
    expect(t1.attempt).toBe(0)
    expect(nodes).toContain(t1.assignedNode)
    expect(t1.deadline).toBeGreaterThan(Date.now() - 60_000)
    expect(status.taskStatuses[1]!.status).toBe('UNASSIGNED')

    // the WS topic streamed the transitions
    await eventually('the ASSIGNED transition on the execution topic', async () => events.some(e => e.scope === 'task' && e.to === 'ASSIGNED') ? true : undefined, 10_000)
    await sub.close()
    expect(events.every(e => e.executionId === 'assign-1')).toBe(true)
    expect(events.filter(e => e.scope === 'task').map(e => [e.taskId, e.from, e.to])).toEqual([[modelTaskId(modelId, 1), 'UNASSIGNED', 'ASSIGNED']])
    expect(events.filter(e => e.scope === 'execution').map(e => e.to)).toEqual(['pending', 'in-progress'])

    // the chain holds exactly that assignment
    const connection = new Connection(file!.chain!.rpcUrl, 'confirmed')
    const programId = new PublicKey(file!.chain!.programId)
    const config = configAddress(programId, Buffer.from(genesisHash(JSON.parse(readFileSync(file!.genesisFile, 'utf8'))), 'hex'))[0]
    const execution = executionAddress(programId, config, executionKey('assign-1'))[0]
    const a = decodeAssignment((await connection.getAccountInfo(assignmentAddress(programId, execution, taskKey(modelTaskId(modelId, 1)), 0)[0]))!.data)
    const assigned = file!.daemons.find(d => d.peerId === t1.assignedNode)!
    expect(a.node.toBase58()).toBe(nodeAddress(programId, config, new PublicKey(assigned.solanaAddress))[0].toBase58())
    expect(peerIdOfKey(new PublicKey(assigned.solanaAddress).toBytes())).toBe(t1.assignedNode)

    // the seed on chain is the one anybody derives from SlotHashes at request slot + K
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    const requestSlot = (await requester.call<{ requestSlot: number }>('bitflow_getExecutionStatus', ['assign-1'])).requestSlot
    const seedSlot = BigInt(requestSlot + cfg.params.seedDelaySlots)
    const entry = await readSlotHash(connection, seedSlot)
    expect(entry).toBeDefined()
    const seed = attemptSeed({ genesisHash: cfg.genesisHash, executionId: executionKey('assign-1'), taskId: taskKey(modelTaskId(modelId, 1)), attempt: 0, slot: seedSlot, slotHash: entry!.hash })
    expect(Buffer.from(a.seed).toString('hex')).toBe(Buffer.from(seed).toString('hex'))
    expect(Number(a.assignedSlot)).toBeGreaterThan(requestSlot + cfg.params.seedDelaySlots)

    // the other oracles agree; the nodes learn it from the assignment notice, checked against the chain
    for (const name of ['oracle-2', 'oracle-3', 'node-1', 'node-2']) {
      const other = net.client(byName(name))
      await eventually(`${name} to apply the assignment`, async () => {
        const s = await other.call<Status>('bitflow_getExecutionStatus', ['assign-1']).catch(() => undefined)
        return s?.taskStatuses[0]?.assignedNode === t1.assignedNode ? true : undefined
      }, 30_000)
    }
  }, 120_000)

  it('anyone can recompute the draw from public data: the certified round, the on-chain registry and the slot hash', async () => {
    const s0 = await eventually('an oracle to report how task 1 was drawn', async () => {
      for (const name of ['oracle-1', 'oracle-2', 'oracle-3']) {
        const st = await net.client(byName(name)).call<{ taskStatuses: Array<{ assignedNode: string | null, attempt: number | null, selection: { livenessRound: number, seedSlot: number, seed: string } | null }> }>('bitflow_getExecutionStatus', ['assign-1']).catch(() => undefined)
        const t = st?.taskStatuses[0]
        if (t?.selection !== null && t?.selection !== undefined && t.attempt === 0) return t
      }
      return undefined
    }, 30_000)
    const sel = s0.selection!
    // public data only: the certified round's table, the registry on chain, SlotHashes
    const round = await requester.call<{ round: number, certified: boolean, table: TableEntry[] }>('bitflow_committeeRound', [sel.livenessRound])
    expect(round.certified).toBe(true)
    const connection = new Connection(file!.chain!.rpcUrl, 'confirmed')
    const programId = new PublicKey(file!.chain!.programId)
    const config = new PublicKey(file!.chain!.config)
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    const entry = await readSlotHash(connection, BigInt(sel.seedSlot))
    expect(entry).toBeDefined()
    const task = modelTaskId(modelId, 1)
    const seed = attemptSeed({ genesisHash: cfg.genesisHash, executionId: executionKey('assign-1'), taskId: taskKey(task), attempt: 0, slot: BigInt(sel.seedSlot), slotHash: entry!.hash })
    expect(Buffer.from(seed).toString('hex')).toBe(sel.seed)
    const nodes = await connection.getProgramAccounts(programId, { filters: [{ dataSize: NODE_SIZE }, { memcmp: { offset: 8, bytes: config.toBase58() } }] })
    const keyHex = Buffer.from(taskKey(task)).toString('hex')
    const candidates: Candidate[] = nodes.map(a => decodeNode(a.account.data)).map(n => {
      const peerId = peerIdOfKey(n.operator.toBytes())
      return {
        peerId,
        publicKey: n.operator.toBytes(),
        liveness: round.table.find(e => e.peerId === peerId),
        registration: { stake: n.stake, specializations: new Set(n.specializations.some(x => Buffer.from(x).toString('hex') === keyHex) ? [task] : []), slashed: n.status !== NodeStatus.Active, paymentsInFlight: 0n }
      }
    }).filter(c => c.liveness?.roles === undefined || c.liveness.roles.includes('node'))
    const drawn = selectNodes(candidates, { taskId: task, vramBytes: 0, gpu: 'optional', datasets: [], payment: 1n }, seed, new Set(), { minStake: cfg.params.minStake, minStakeRatio: cfg.params.minStakeRatioBps / 10_000 }, 3)
    expect(drawn.ranked[0]).toBe(s0.assignedNode)
    // the same public data with another slot hash draws independently of anything the requester chose:
    // over 64 hypothetical hashes every eligible node is drawn (nobody can steer before the hash exists)
    const seen = new Set<string>()
    for (let i = 0; i < 64; i++) {
      const other = attemptSeed({ genesisHash: cfg.genesisHash, executionId: executionKey('assign-1'), taskId: taskKey(task), attempt: 0, slot: BigInt(sel.seedSlot), slotHash: createHash('sha256').update(`hypothetical ${i}`).digest() })
      seen.add(selectNodes(candidates, { taskId: task, vramBytes: 0, gpu: 'optional', datasets: [], payment: 1n }, other, new Set(), { minStake: cfg.params.minStake, minStakeRatio: cfg.params.minStakeRatioBps / 10_000 }, 1).ranked[0]!)
    }
    expect(seen.size).toBe(drawn.eligible.length)
    // and the request slot the seed derives from is the slot the escrow landed in, fixed by the chain
    const execution = executionAddress(programId, config, executionKey('assign-1'))[0]
    const opened = await connection.getTransaction(requestSignature, { commitment: 'confirmed', maxSupportedTransactionVersion: 0 })
    expect(decodeExecution((await connection.getAccountInfo(execution))!.data).requestSlot).toBe(BigInt(opened!.slot))
  }, 60_000)
})
