import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Connection, PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { buildDemoModel, demoTaskpackCid, prepareDemo, compareWithReference, type PreparedDemo } from '../../../scripts/lib/demo-model.js'
import { executionAddress, taskStateAddress } from '../../../programs/client/index.js'
import { executionKey, taskKey } from '../../../protocols/execution/ids.js'
import type { BitflowClient } from '../../../daemon/rpc/client.js'
import { tempDir, cleanup, eventually } from '../../helpers/daemon.js'

/**
 * One test net (local chain, 4 oracles, 3 nodes, 1 validator, all specialized in the demo model's
 * tasks) for the execution pipeline: the three-task model end to end, a node killed mid-task, and
 * the committee with one and then two of four oracles down.
 */
const dir = tempDir('exec-pipeline')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile | undefined
let requester: BitflowClient
let demo: PreparedDemo
const byName = (name: string): TestnetDaemon => (net.load() ?? file!).daemons.find(d => d.name === name)!

interface TaskStatus { taskId: string, task: number, status: string, attempt: number | null, assignedNode: string | null, blacklist: string[], failures: Array<{ attempt: number, node: string, reason: string }>, waiting?: string | null }
interface Status { overallStatus: string, taskStatuses: TaskStatus[], outputUris: Record<string, string | null>, reason: string | null }
interface Transition { executionId: string, scope: string, from: string, to: string, taskId?: string, attempt?: number | null, node?: string | null, reason?: string }

beforeAll(async () => {
  const model = buildDemoModel(await demoTaskpackCid())
  file = await net.up({ oracles: 4, nodes: 3, validators: 1, logLevel: process.env.BITFLOW_TEST_LOG_LEVEL ?? 'info', specializationsFor: () => model.taskIds })
  requester = net.client(byName('oracle-1'))
  demo = await prepareDemo(requester)
  expect(demo.modelId).toBe(model.modelId)
}, 240_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(net.load()?.daemons.map(d => d.pid) ?? []), ...(file?.chain !== undefined ? [file.chain.pid] : [])], process.env.BITFLOW_KEEP_TEST_DIRS === '1' ? [] : [dir])
})

const status = async (id: string, client = requester): Promise<Status> => await client.call<Status>('bitflow_getExecutionStatus', [id])

async function finished (executionId: string, timeoutMs: number, client = requester): Promise<Status> {
  return await eventually(`execution ${executionId} to finish`, async () => {
    const s = await status(executionId, client)
    return ['completed', 'failed', 'cancelled'].includes(s.overallStatus) ? s : undefined
  }, timeoutMs)
}

async function request (executionId: string): Promise<void> {
  await requester.call('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: demo.inputs, maxFee: '100000', executionId }])
}

async function outputMatches (s: Status): Promise<boolean> {
  const got = await requester.call<{ safetensorsBase64: string }>('bitflow_getTensor', [s.outputUris.y])
  return compareWithReference('y', new Uint8Array(Buffer.from(got.safetensorsBase64, 'base64')), demo.reference).match
}

describe('an execution from request to verified output', () => {
  it('runs the three-task model on the nodes and its output equals the reference', async () => {
    await request('pipe-ok')
    const s = await finished('pipe-ok', 150_000)
    expect(s.overallStatus, JSON.stringify(s)).toBe('completed')
    expect(s.taskStatuses.map(t => t.status)).toEqual(['VERIFIED', 'VERIFIED', 'VERIFIED'])
    // every task ran on a node, never on the validator or an oracle
    const nodes = new Set(file!.daemons.filter(d => d.role === 'node').map(d => d.peerId))
    for (const t of s.taskStatuses) expect(nodes.has(t.assignedNode!)).toBe(true)
    expect(await outputMatches(s)).toBe(true)
    // another daemon (a node) followed the same execution to the same result
    const seen = await finished('pipe-ok', 30_000, net.client(byName('node-1')))
    expect(seen.outputUris.y).toBe(s.outputUris.y)
  }, 200_000)

  it('reassigns a task whose node was killed mid-task after its deadline, keeps that node blacklisted, and completes', async () => {
    const transitions: Transition[] = []
    let victim: TestnetDaemon | undefined
    const sub = await requester.subscribe<Transition>('execution', { executionId: 'pipe-kill' }, e => {
      transitions.push(e)
      if (victim === undefined && e.scope === 'task' && e.to === 'ASSIGNED' && e.taskId?.endsWith('/1') === true) {
        victim = file!.daemons.find(d => d.peerId === e.node)
        if (victim !== undefined) void net.stopDaemon(victim.name, 'SIGKILL')
      }
    })
    try {
      await request('pipe-kill')
      const s = await finished('pipe-kill', 200_000)
      expect(victim, 'a node was assigned task 1').toBeDefined()
      expect(s.overallStatus, JSON.stringify(s)).toBe('completed')
      const t1 = s.taskStatuses[0]!
      expect(t1.failures[0]).toMatchObject({ attempt: 0, node: victim!.peerId })
      expect(t1.failures[0]!.reason).toMatch(/deadline missed/)
      expect(t1.blacklist).toContain(victim!.peerId)
      expect(t1.assignedNode).not.toBe(victim!.peerId)
      expect(t1.attempt).toBeGreaterThan(0)
      // the dead node was never assigned anything again in this execution
      const later = transitions.filter(e => e.scope === 'task' && e.to === 'ASSIGNED').slice(1)
      expect(later.length).toBeGreaterThan(0)
      expect(later.every(e => e.node !== victim!.peerId)).toBe(true)
      expect(transitions.some(e => e.scope === 'task' && e.to === 'FAILED' && e.taskId?.endsWith('/1') === true)).toBe(true)
      expect(await outputMatches(s)).toBe(true)
    } finally {
      await sub.close()
      if (victim !== undefined) await net.startDaemon(victim.name)
    }
  }, 300_000)

  it('completes with one of four oracles down; with two down no assignment is settled until one is back', async () => {
    await net.stopDaemon('oracle-4', 'SIGKILL')
    try {
      await request('pipe-one-down')
      const s = await finished('pipe-one-down', 150_000)
      expect(s.overallStatus, JSON.stringify(s)).toBe('completed')
      expect(await outputMatches(s)).toBe(true)

      // oracle-3 goes down once it holds the request (it persists what it learned)
      await request('pipe-two-down')
      await eventually('oracle-3 to track the request', async () => (await status('pipe-two-down', net.client(byName('oracle-3')))).overallStatus === 'pending' ? true : undefined, 10_000)
      await net.stopDaemon('oracle-3', 'SIGKILL')
      const before = await status('pipe-two-down')
      if (before.overallStatus === 'pending') {
        // 2 of 4 < threshold 3: nothing may be settled while they are down; past ~45 s the seed goes stale and is refreshed on chain
        const connection = new Connection(file!.chain!.rpcUrl, 'confirmed')
        const programId = new PublicKey(file!.chain!.programId)
        const execution = executionAddress(programId, new PublicKey(file!.chain!.config), executionKey('pipe-two-down'))[0]
        const taskState = taskStateAddress(programId, execution, taskKey(`${demo.modelId}/1`))[0]
        const until = Date.now() + 50_000
        while (Date.now() < until) {
          expect(await connection.getAccountInfo(taskState, 'confirmed'), 'no assignment settled with 2 of 4 oracles').toBeNull()
          const waiting = (await status('pipe-two-down')).taskStatuses
          expect(waiting[0]!.status).toBe('UNASSIGNED')
          // the requester's oracle says why: its vote waits for a quorum (or the seed is being refreshed)
          expect(waiting[0]!.waiting, JSON.stringify(waiting[0])).toMatch(/quorum|seed/)
          expect(waiting[1]!.waiting).toBe('waiting for task 1 to be verified')
          await new Promise(resolve => setTimeout(resolve, 1000))
        }
      }
      await net.startDaemon('oracle-3')
      const s2 = await finished('pipe-two-down', 150_000)
      expect(s2.overallStatus, JSON.stringify(s2)).toBe('completed')
      expect(await outputMatches(s2)).toBe(true)
      // the restarted oracle replayed its log and caught up with the chain
      const seen = await finished('pipe-two-down', 30_000, net.client(byName('oracle-3')))
      expect(seen.outputUris.y).toBe(s2.outputUris.y)
    } finally {
      if (!(net.load()?.daemons.find(d => d.name === 'oracle-4')?.pid === undefined)) await net.startDaemon('oracle-4').catch(() => {})
    }
  }, 400_000)
})
