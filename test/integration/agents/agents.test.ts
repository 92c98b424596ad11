/**
 * Agent scoring on the real engine: a correct agent scores 100, a partly wrong one less, one that
 * loops forever or imports socket scores 0 with the reason, an always-equal object gets nothing;
 * rankings are ordered. Then the JSON-RPC methods and the CLI through a real validator daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Docker from 'dockerode'
import { AgentStore } from '../../../sandbox/agents/store.js'
import { scoreAgents, type Rankings } from '../../../sandbox/agents/score.js'
import { LABEL_OWNER } from '../../../sandbox/policy.js'
import { DEFAULT_SOCKET_PATH } from '../../../sandbox/config.js'
import { BitflowClient } from '../../../daemon/rpc/client.js'
import { cleanup, rpcFailure, runCli, spawnDaemon, tempDir, type SpawnedDaemon } from '../../helpers/daemon.js'
import { startFixture, type Fixture } from '../sandbox/helpers.js'
import { ALWAYS_EQUAL_AGENT, GOOD_AGENT, LOOP_AGENT, NUMPY_AGENT, PARTIAL_AGENT, SOCKET_AGENT } from './fixtures.js'

const dir = tempDir('agents')
let fx: Fixture
beforeAll(async () => { fx = await startFixture({ slots: 2 }) })
afterAll(async () => {
  await fx?.cleanup()
  cleanup([], [dir])
})

describe('agent scoring in the sandbox', () => {
  let rankings: Rankings
  const store = new AgentStore(join(dir, 'store'))

  beforeAll(async () => {
    for (const [who, src] of [['good', GOOD_AGENT], ['partial', PARTIAL_AGENT], ['cheat', ALWAYS_EQUAL_AGENT], ['sock', SOCKET_AGENT]] as const) await store.submit(who, src)
    rankings = await scoreAgents(store, fx.runner, { seed: 1234 })
  })

  it('gives a correct agent 100 and ranks it first', () => {
    const good = rankings.rankings.find(a => a.submitter === 'good')!
    expect(good).toMatchObject({ rank: 1, score: 100, reason: '', disqualified: false })
    expect(good.passed).toBe(rankings.suite.assertions)
    expect(good.tasks.length).toBeGreaterThanOrEqual(5)
    expect(good.tasks.every(t => t.outcome === 'passed')).toBe(true)
  })

  it('gives a partly wrong agent less, naming the failed tasks', () => {
    const partial = rankings.rankings.find(a => a.submitter === 'partial')!
    expect(partial.score).toBeGreaterThan(0)
    expect(partial.score).toBeLessThan(100)
    expect(partial.rank).toBe(2)
    expect(partial.reason).toMatch(/reverse_string: \d+ of \d+ assertions failed/)
    expect(partial.tasks.filter(t => t.outcome === 'failed').map(t => t.task).sort()).toEqual(['is_palindrome', 'reverse_string'])
  })

  it('gives an object whose __eq__ always says yes nothing: only JSON crosses the boundary', () => {
    const cheat = rankings.rankings.find(a => a.submitter === 'cheat')!
    expect(cheat).toMatchObject({ score: 0, passed: 0 })
  })

  it('scores an agent importing socket 0 without running it, with the reason', () => {
    const sock = rankings.rankings.find(a => a.submitter === 'sock')!
    expect(sock).toMatchObject({ score: 0, disqualified: true, tasks: [] })
    expect(sock.reason).toMatch(/^disqualified: imports socket \(line 1\)/)
  })

  it('orders the rankings and splits the simulated pool by score', () => {
    const scores = rankings.rankings.map(a => a.score)
    expect(scores).toEqual([...scores].sort((a, b) => b - a))
    const total = rankings.rankings.reduce((s, a) => s + a.reward, 0)
    expect(total).toBeCloseTo(rankings.rewardPool, 3)
    expect(rankings.rankings.find(a => a.submitter === 'sock')!.reward).toBe(0)
  })

  it('scores an agent that loops forever 0 with the timeout as the reason', async () => {
    const loopStore = new AgentStore(join(dir, 'loop-store'))
    await loopStore.submit('looper', LOOP_AGENT)
    const r = await scoreAgents(loopStore, fx.runner, { seed: 1, taskTimeoutMs: 2000 })
    const looper = r.rankings[0]!
    expect(looper.score).toBe(0)
    expect(looper.tasks.every(t => t.outcome === 'timeout')).toBe(true)
    expect(looper.reason).toMatch(/timed out after 2 s/)
  })
})

describe('agent scoring through a validator daemon', () => {
  const genesisFile = join(dir, 'genesis.json')
  let validator: SpawnedDaemon
  let node: SpawnedDaemon
  beforeAll(async () => {
    mkdirSync(dir, { recursive: true })
    writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
    ;[validator, node] = await Promise.all([
      spawnDaemon(join(dir, 'validator'), ['--genesis-file', genesisFile, '--role', 'validator', '--log-level', 'warn'], 60_000),
      spawnDaemon(join(dir, 'node'), ['--genesis-file', genesisFile, '--role', 'node', '--log-level', 'warn'], 60_000)
    ])
  })
  afterAll(async () => {
    await Promise.all([validator?.stop(), node?.stop()])
    cleanup([validator?.pid, node?.pid].filter((p): p is number => p !== undefined), [])
    // a daemon killed mid-round leaves its containers under its owner label
    const docker = new Docker({ socketPath: DEFAULT_SOCKET_PATH })
    for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL_OWNER] } })) {
      if ([validator, node].some(d => d !== undefined && c.Labels[LABEL_OWNER] === `agents-${d.runtime.peerId}`.slice(0, 63))) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {})
    }
  })

  it('submits through the CLI, refuses non-stdlib agents, needs the token to submit', async () => {
    const good = join(dir, 'good.py')
    writeFileSync(good, GOOD_AGENT)
    const bad = join(dir, 'numpy_agent.py')
    writeFileSync(bad, NUMPY_AGENT)
    const [r, refused] = await Promise.all([
      runCli(['agent', 'submit', good, '--submitter', 'alice', '--data-dir', validator.dataDir]),
      runCli(['agent', 'submit', bad, '--data-dir', validator.dataDir])
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/accepted agent of 'alice': \d+ bytes, sha256 [0-9a-f]{64}/)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/error \[ERR_AGENT_IMPORT\].*numpy/)
    const anonymous = new BitflowClient(validator.runtime.rpcUrl)
    expect((await rpcFailure(anonymous.call('bitflow_submitAgent', { submitter: 'eve', source: 'print(1)\n' }))).code).toBe(-32001)
    const sub = await validator.client.call<{ submitter: string, warnings: string[] }>('bitflow_submitAgent', { submitter: 'bob', source: SOCKET_AGENT })
    expect(sub.warnings.join()).toMatch(/socket/)
    expect((await rpcFailure(validator.client.call('bitflow_submitAgent', { submitter: '../x', source: 'print(1)\n' }))).code).toBe(-32602)
  })

  it('scores on a validator (bitflow_scoreAgents), serves the rankings (bitflow_getRankings and the CLI)', async () => {
    const empty = await node.client.call<Rankings>('bitflow_getRankings')
    expect(empty).toMatchObject({ scoredAt: null, rankings: [] })
    // a round runs 7 containers: give it more than the default 30 s client timeout on a loaded machine
    const slow = BitflowClient.fromDataDir(validator.dataDir, { timeoutMs: 300_000 })
    const r = await slow.call<Rankings>('bitflow_scoreAgents', { submitters: ['alice', 'bob'] })
    expect(r.rankings.map(a => [a.rank, a.submitter, a.score])).toEqual([[1, 'alice', 100], [2, 'bob', 0]])
    expect(r.rankings[0]!.reward).toBe(r.rewardPool)
    expect(await validator.client.call('bitflow_getRankings')).toEqual(r)
    const [table, json] = await Promise.all([
      runCli(['agent', 'rankings', '--data-dir', validator.dataDir]),
      runCli(['agent', 'rankings', '--json', '--data-dir', validator.dataDir])
    ])
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/^1 +alice +100 +\d+\/\d+ +100\.00 +-$/m)
    expect(table.stdout).toMatch(/^2 +bob +0 .*disqualified: imports socket/m)
    expect(JSON.parse(json.stdout)).toEqual(r)
  })

  it('refuses to score without the validator role (-32002) or without the token (-32001)', async () => {
    const err = await rpcFailure(node.client.call('bitflow_scoreAgents', {}))
    expect(err.code).toBe(-32002)
    expect(err.message).toMatch(/validator role/)
    expect((await rpcFailure(new BitflowClient(validator.runtime.rpcUrl).call('bitflow_scoreAgents', {}))).code).toBe(-32001)
    const cli = await runCli(['agent', 'score', '--data-dir', node.dataDir])
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/validator role/)
  })
})
