/**
 * Disputes and slashing on a test net (issue 8): 3 oracles, 3 nodes (node-1 `--byzantine
 * wrong-output`, with more stake so that the stake-weighted selection picks it), 2 validators, every
 * sampled (samplingProbability 1), all specialized in the demo model's tasks.
 *  1. node-1's perturbed result fails verification; the task is reassigned; the re-execution sides
 *     with the verifier; the committee records and executes the slash of node-1 on chain; the
 *     execution completes with the reference output.
 *  2. validator-2 restarted as `--byzantine lazy-copy` (validator-1 stopped, so it verifies): it
 *     says Match without re-running and is slashed; with validator-1 back the execution completes.
 *  3. a copy of the demo taskpack that adds random noise to its output on every run: the asserter,
 *     the verifier and the re-execution all disagree; nobody is slashed, the taskpack is flagged
 *     nondeterministic, and the execution fails with that reason.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { buildDemoModel, demoTaskpackCid, demoTaskpackDir, prepareDemo, type PreparedDemo, type DemoModel } from '../../../scripts/lib/demo-model.js'
import { addTestnetStake, chainConnection, nodeAccountOf, readChainSlashes, readNode, tokenBalance, type ChainSlash } from '../../../scripts/lib/slashing.js'
import { decodeConfig, executionAddress, NodeStatus, SlashStatus, verificationPayment, type ConfigAccount } from '../../../programs/client/index.js'
import { executionKey } from '../../../protocols/execution/ids.js'
import type { BitflowClient } from '../../../daemon/rpc/client.js'
import { tempDir, cleanup, eventually } from '../../helpers/daemon.js'
import { expectReferenceOutput, finalStatus } from '../../helpers/execution.js'

const dir = tempDir('exec-slashing')
const net = new Testnet(join(dir, 'net'))
const noisyDir = join(dir, 'noisy-taskpack')
let noisyModel: DemoModel
let file: TestnetFile | undefined
let requester: BitflowClient
let demo: PreparedDemo
let config: ConfigAccount
const byName = (name: string): TestnetDaemon => file!.daemons.find(d => d.name === name)!

interface TaskStatus { taskId: string, status: string, attempt: number | null, assignedNode: string | null, failures: Array<{ attempt: number, node: string, reason: string, at: number }> }
interface Status { overallStatus: string, taskStatuses: TaskStatus[], outputUris: Record<string, string | null>, reason: string | null }
interface Slashes {
  slashes: Array<{ slash: string | null, executionId: string | null, accused: string | null, accusedNode: string, accusedRole: string | null, status: string, amount: string | null, bounty: string | null, stakeBefore: string | null, stakeAfter: string | null, reason: string | null }>
  disputes: Array<{ executionId: string, taskId: string, attempt: number, thirdAttempt: number | null, kind: string, status: string, accused: string | null, accusedRole: string | null, reason: string | null, openedAt: number, decidedAt: number | null, fraudCompletedAt: number | null, recordedSeenAt: number | null, executedSeenAt: number | null }>
  nondeterministic: Array<{ taskpack: string, executionId: string, taskId: string, reason: string, at: number }>
}

/** The demo taskpack, renamed, adding N(0, 1) noise to its output on every run. */
function writeNoisyTaskpack (): void {
  cpSync(demoTaskpackDir(), noisyDir, { recursive: true })
  const manifest = join(noisyDir, 'manifest.yaml')
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('name: bitflow-dense\n', 'name: bitflow-dense-noisy\n'))
  const task = join(noisyDir, 'src', 'task.py')
  const code = readFileSync(task, 'utf8')
  const anchor = '        if not np.isfinite(y).all():'
  if (!code.includes(anchor)) throw new Error('the demo task.py changed: update the noisy copy')
  writeFileSync(task, code.replace(anchor, `        y = y + np.random.default_rng().normal(0.0, 1.0, y.shape).astype(np.float32)\n${anchor}`))
}

beforeAll(async () => {
  const taskpackCid = await demoTaskpackCid()
  const model = buildDemoModel(taskpackCid)
  writeNoisyTaskpack()
  noisyModel = buildDemoModel(await demoTaskpackCid(noisyDir))
  file = await net.up({
    oracles: 3, nodes: 3, validators: 2, logLevel: 'info', specializationsFor: () => [...model.taskIds, ...noisyModel.taskIds],
    settlement: { samplingProbability: 1 },
    argsFor: name => name === 'node-1' ? ['--byzantine', 'wrong-output'] : []
  })
  const connection = chainConnection(file.chain!)
  config = decodeConfig((await connection.getAccountInfo(new PublicKey(file.chain!.config)))!.data)
  // selection is stake-weighted: 50x the others' stake makes node-1 the first pick almost surely
  await addTestnetStake(net.dir, file.chain!, byName('node-1'), config.params.minStake * 10n * 49n)
  requester = net.client(byName('oracle-1'))
  demo = await prepareDemo(requester)
  expect(demo.modelId).toBe(model.modelId)
}, 240_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(net.load()?.daemons.map(d => d.pid) ?? []), ...(file?.chain !== undefined ? [file.chain.pid] : [])], process.env.BITFLOW_KEEP_TEST_DIRS === '1' ? [] : [dir])
})



/** Polls the chain for the slash of `accused` in `execution`; returns it once it reaches `status`. */
async function slashOf (execution: PublicKey, accused: PublicKey, status: SlashStatus, timeoutMs: number): Promise<ChainSlash> {
  const connection = chainConnection(file!.chain!)
  return await eventually(`the slash of ${accused.toBase58()} to be ${SlashStatus[status]}`, async () => {
    const found = (await readChainSlashes(connection, file!.chain!, execution)).find(s => s.slash.accused.equals(accused))
    return found !== undefined && found.slash.status >= status ? found : undefined
  }, timeoutMs)
}

const executionOf = (executionId: string): PublicKey => executionAddress(new PublicKey(file!.chain!.programId), new PublicKey(file!.chain!.config), executionKey(executionId))[0]

describe('disputes and slashing', () => {
  it('slashes a node that reports wrong outputs, reassigns its task, and the execution still matches the reference', async () => {
    const connection = chainConnection(file!.chain!)
    const node1 = byName('node-1')
    const node1Account = nodeAccountOf(file!.chain!, node1)
    const before = await readNode(connection, node1Account)
    expect(before.status).toBe(NodeStatus.Active)
    const treasury = new PublicKey(file!.chain!.treasury)
    const vaultBefore = await tokenBalance(connection, before.vault)
    const treasuryBefore = await tokenBalance(connection, treasury)
    expect(vaultBefore).toBe(before.stake + before.unbonding)

    const r = await requester.call<{ executionId: string, pricePerTask: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: demo.inputs, maxFee: '100000' }])
    const execution = executionOf(r.executionId)

    // recorded: the node is frozen; the bounty account's balance is read before the challenge delay ends
    const recorded = await slashOf(execution, node1Account, SlashStatus.Recorded, 240_000)
    const bountyBefore = await tokenBalance(connection, recorded.slash.bountyTo)
    expect(recorded.node.status === NodeStatus.Slashed || recorded.slash.status === SlashStatus.Executed).toBe(true)
    const executed = await slashOf(execution, node1Account, SlashStatus.Executed, 60_000)

    const s = await finalStatus<Status>(requester, r.executionId, 240_000)
    await expectReferenceOutput(requester, s, demo.reference)
    // the fraudulent attempt failed verification and its task was reassigned to another node
    const failedTask = s.taskStatuses.find(t => t.failures.some(f => f.node === node1.peerId && f.reason.startsWith('verification failed')))
    expect(failedTask, JSON.stringify(s.taskStatuses)).toBeDefined()
    expect(failedTask!.status).toBe('VERIFIED')
    expect(failedTask!.assignedNode).not.toBe(node1.peerId)
    expect(failedTask!.attempt).toBeGreaterThan(executed.slash.attempt)
    expect(failedTask!.failures.some(f => f.attempt === executed.slash.attempt)).toBe(true)

    // the numbers, from the chain
    const held = before.stake + before.unbonding
    const amount = held * BigInt(config.params.slashBps) / 10_000n
    const bounty = amount * BigInt(config.params.bountyBps) / 10_000n
    expect(executed.slash.amount).toBe(amount)
    expect(executed.slash.bounty).toBe(bounty)
    expect(bounty * 2n).toBeLessThanOrEqual(amount)
    expect(executed.stakeBefore).toBe(held)
    expect(executed.stakeAfter).toBe(held * BigInt(10_000 - config.params.slashBps) / 10_000n)
    const after = await readNode(connection, node1Account)
    expect(after.status).toBe(NodeStatus.SlashExecuted)
    expect(after.stake).toBe(0n)
    expect(after.unbonding).toBe(held - amount)
    expect(await tokenBalance(connection, before.vault)).toBe(vaultBefore - amount)
    expect(await tokenBalance(connection, treasury) - treasuryBefore).toBe(amount - bounty)
    // the prover's owner got the bounty (plus, possibly, verification payments made meanwhile)
    const delta = await tokenBalance(connection, executed.slash.bountyTo) - bountyBefore
    const vp = verificationPayment(config.params, BigInt(r.pricePerTask))
    expect(delta).toBeGreaterThanOrEqual(bounty)
    expect((delta - bounty) % vp).toBe(0n)

    // what users see: the oracles' dispute record, and any daemon's chain-backed slash list
    const seen = await eventually('the dispute record to show the executed slash', async () => {
      const x = await requester.call<Slashes>('bitflow_getSlashes', [r.executionId])
      return x.disputes.some(d => d.accused === node1.peerId && d.status === 'executed') ? x : undefined
    }, 10_000)
    const dispute = seen.disputes.find(d => d.accused === node1.peerId && d.status === 'executed')
    expect(dispute, JSON.stringify(seen)).toMatchObject({ kind: 'verification-failed', accusedRole: 'asserter' })
    expect(dispute!.thirdAttempt).not.toBeNull()
    expect(seen.slashes.find(x => x.accusedNode === node1Account.toBase58())).toMatchObject({ status: 'executed', amount: amount.toString(), bounty: bounty.toString(), stakeBefore: held.toString(), accusedRole: 'asserter' })
    const fromNode = await net.client(byName('node-2')).call<Slashes>('bitflow_getSlashes', { executionId: r.executionId })
    expect(fromNode.slashes.find(x => x.accusedNode === node1Account.toBase58())).toMatchObject({ status: 'executed', amount: amount.toString(), accused: node1.peerId })
    const t = dispute!
    console.log(`slashing figures: fraudulent completion -> dispute opened ${t.openedAt - (t.fraudCompletedAt ?? t.openedAt)} ms, -> decided ${(t.decidedAt ?? 0) - (t.fraudCompletedAt ?? t.openedAt)} ms, -> recorded ${(t.recordedSeenAt ?? 0) - (t.fraudCompletedAt ?? t.openedAt)} ms, -> executed ${(t.executedSeenAt ?? 0) - (t.fraudCompletedAt ?? t.openedAt)} ms; reason: ${t.reason}`)
  }, 420_000)

  it('slashes a lazy validator that says Match without re-running', async () => {
    const connection = chainConnection(file!.chain!)
    // validator-1 stops; validator-2 comes back lazy, so it verifies the next sampled task
    await net.stopDaemon('validator-1')
    await net.stopDaemon('validator-2')
    const current = net.load()!
    current.daemons = current.daemons.map(d => d.name === 'validator-2' ? { ...d, args: [...d.args, '--byzantine', 'lazy-copy'] } : d)
    writeFileSync(net.file, JSON.stringify(current, null, 2) + '\n')
    await net.startDaemon('validator-2')
    file = net.load()!
    const v1 = byName('validator-1')
    const v2 = byName('validator-2')
    await eventually('a certified round with validator-2 live and validator-1 gone', async () => {
      const round = await requester.call<{ table: Array<{ peerId: string, status: string }> }>('bitflow_committeeRound', [])
      const live = (p: string): boolean => round.table.some(e => e.peerId === p && e.status !== 'offline')
      return live(v2.peerId) && !live(v1.peerId) ? true : undefined
    }, 90_000)
    const v2Account = nodeAccountOf(file.chain!, v2)
    const before = await readNode(connection, v2Account)
    expect(before.status).toBe(NodeStatus.Active)

    const r = await requester.call<{ executionId: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: demo.inputs, maxFee: '100000' }])
    const executed = await slashOf(executionOf(r.executionId), v2Account, SlashStatus.Executed, 240_000)
    expect(executed.slash.amount).toBe((before.stake + before.unbonding) * BigInt(config.params.slashBps) / 10_000n)
    expect((await readNode(connection, v2Account)).status).toBe(NodeStatus.SlashExecuted)
    // the oracles follow the chain: their dispute record reaches 'executed' within a tick or two
    const seen = await eventually('the dispute record to show the executed slash', async () => {
      const x = await requester.call<Slashes>('bitflow_getSlashes', [r.executionId])
      return x.disputes.some(d => d.accused === v2.peerId && d.status === 'executed') ? x : undefined
    }, 10_000)
    const dispute = seen.disputes.find(d => d.accused === v2.peerId && d.status === 'executed')
    expect(dispute, JSON.stringify(seen)).toMatchObject({ kind: 'verified-suspicious', accusedRole: 'verifier' })
    expect(dispute!.reason).toMatch(/published no outputs/)
    console.log(`lazy validator: dispute opened -> recorded ${(dispute!.recordedSeenAt ?? 0) - dispute!.openedAt} ms, -> executed ${(dispute!.executedSeenAt ?? 0) - dispute!.openedAt} ms`)

    // an honest validator again: the remaining sampled tasks get verified and the execution completes
    await net.startDaemon('validator-1')
    file = net.load()!
    await expectReferenceOutput(requester, await finalStatus<Status>(requester, r.executionId, 240_000), demo.reference)
  }, 480_000)
  it('a taskpack that gives different outputs on every run splits three ways: nobody is slashed, the taskpack is flagged', async () => {
    const connection = chainConnection(file!.chain!)
    const noisy = await prepareDemo(requester, { taskpackDir: noisyDir })
    expect(noisy.modelId).toBe(noisyModel.modelId)
    const parties = file!.daemons.filter(d => d.role !== 'oracle')
    const before = await Promise.all(parties.map(async d => await readNode(connection, nodeAccountOf(file!.chain!, d))))

    const r = await requester.call<{ executionId: string }>('bitflow_requestExecution', [{ modelId: noisy.modelId, inputs: noisy.inputs, maxFee: '100000' }])
    const flagged = await eventually('the taskpack to be flagged nondeterministic', async () => {
      const x = await requester.call<Slashes>('bitflow_getSlashes', [r.executionId])
      return x.nondeterministic.length > 0 ? x : undefined
    }, 300_000)
    const flag = flagged.nondeterministic[0]!
    expect(flag).toMatchObject({ taskpack: noisy.taskpackCid, executionId: r.executionId })
    expect(flag.reason).toMatch(/three-way disagreement/)
    const dispute = flagged.disputes.find(d => d.status === 'nondeterministic')
    expect(dispute, JSON.stringify(flagged.disputes)).toMatchObject({ kind: 'verification-failed', accused: null })
    expect(dispute!.thirdAttempt).not.toBeNull()

    // the execution ends, failed, saying why
    const s = await finalStatus<Status>(requester, r.executionId, 60_000)
    expect(s.overallStatus).toBe('failed')
    expect(s.reason).toMatch(/nondeterministic/)
    // nobody was slashed for it: no slash account, every stake as before
    expect(await readChainSlashes(connection, file!.chain!, executionOf(r.executionId))).toEqual([])
    expect(flagged.disputes.every(d => d.accused === null)).toBe(true)
    const after = await Promise.all(parties.map(async d => await readNode(connection, nodeAccountOf(file!.chain!, d))))
    after.forEach((n, i) => {
      expect(n.status, parties[i]!.name).toBe(before[i]!.status)
      expect(n.stake, parties[i]!.name).toBe(before[i]!.stake)
    })
  }, 420_000)
})
