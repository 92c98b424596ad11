import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { Identity, loadIdentity } from '../../../daemon/identity.js'
import { encodeHeartbeat, type HeartbeatBody } from '../../../protocols/liveness/heartbeat.js'
import { encodeCommitteeMessage } from '../../../protocols/liveness/committee.js'
import { tempDir, spawnDaemon, cleanup, eventually, metricValue, type SpawnedDaemon } from '../../helpers/daemon.js'

const HEARTBEAT_MS = 2000
const ROUND_MS = 3000
const dir = tempDir('liveness')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile
let attacker: SpawnedDaemon | undefined
const SPECIALIZATIONS: Record<string, string[]> = {
  'node-1': ['task-a'],
  'node-2': ['task-a', 'task-b'],
  'node-3': ['task-b'],
  'node-4': ['task-a']
}

const byName = (name: string): TestnetDaemon => file.daemons.find(d => d.name === name)!
const oracles = (): TestnetDaemon[] => file.daemons.filter(d => d.role === 'oracle')
interface Round { round: number, tableHash: string | null, certified: boolean, signers: string[], table: Array<{ peerId: string, status: string }> }
const round = async (d: TestnetDaemon, r?: number): Promise<Round> => await net.client(d).call<Round>('bitflow_committeeRound', r === undefined ? [] : [r])
const liveness = async (d: TestnetDaemon): Promise<Array<{ peerId: string, status: string, bootEpoch: number, hardware: { gpus: Array<{ model: string, simulated?: boolean }> } }>> =>
  (await net.client(d).call<{ nodes: any[] }>('bitflow_liveness')).nodes

beforeAll(async () => {
  file = await net.up({
    oracles: 3,
    nodes: 4,
    validators: 0,
    logLevel: 'warn',
    argsFor: (name) => [
      ...(SPECIALIZATIONS[name] ?? []).flatMap(s => ['--specialization', s]),
      ...(name === 'node-4' ? ['--simulate-gpu', 'A100:80GiB'] : [])
    ]
  })
}, 120_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(file?.daemons.map(d => d.pid) ?? []), ...(attacker !== undefined ? [attacker.pid] : [])], [dir])
})

describe('liveness and committee rounds (3 oracles, 4 nodes)', () => {
  it('after two rounds all oracles report the same certified table hash for one round, listing all 4 nodes', async () => {
    const nodes = file.daemons.filter(d => d.role === 'node').map(d => d.peerId).sort()
    const first = Math.floor(Date.now() / ROUND_MS)
    const certified = await eventually('a certified round listing all 4 nodes', async () => {
      const r = await round(oracles()[0]!)
      return r.certified && r.round >= first + 2 && r.table.filter(e => e.status === 'available').length === 4 ? r : undefined
    }, 30_000)
    expect(certified.table.map(e => e.peerId)).toEqual(nodes)
    for (const o of oracles()) {
      const same = await eventually(`${o.name} to certify round ${certified.round}`, async () => {
        const r = await round(o, certified.round)
        return r.certified ? r : undefined
      })
      expect(same.tableHash).toBe(certified.tableHash)
      expect(same.signers.length).toBeGreaterThanOrEqual(2)
    }
    // a node role daemon follows the votes too
    expect((await round(byName('node-1'), certified.round)).tableHash).toBe(certified.tableHash)
  })

  it('the liveness table carries hardware, including a GPU simulated on the local network', async () => {
    const table = await liveness(oracles()[0]!)
    const n4 = table.find(e => e.peerId === byName('node-4').peerId)!
    expect(n4.hardware.gpus).toEqual([{ model: 'A100', vramBytes: 80 * 2 ** 30, simulated: true }])
    expect(table.find(e => e.peerId === byName('node-1').peerId)!.hardware.gpus).toEqual([])
  })

  it('bitflow_findNodes returns exactly the live nodes specialized in the task', async () => {
    const want = ['node-1', 'node-2', 'node-4'].map(n => byName(n).peerId).sort()
    const found = await eventually('providers of task-a', async () => {
      const nodes = await net.client(byName('oracle-2')).call<Array<{ peerId: string }>>('bitflow_findNodes', ['task-a'])
      const ids = nodes.map(n => n.peerId).sort()
      return ids.length === want.length ? ids : undefined
    }, 20_000)
    expect(found).toEqual(want)
    const b = (await net.client(byName('node-1')).call<Array<{ peerId: string }>>('bitflow_findNodes', ['task-b'])).map(n => n.peerId).sort()
    expect(b).toEqual(['node-2', 'node-3'].map(n => byName(n).peerId).sort())
  })

  it('a node restarted with its data dir is accepted under a new boot epoch; a replay of its old heartbeat is rejected', async () => {
    const victim = byName('node-3')
    const before = (await liveness(oracles()[0]!)).find(e => e.peerId === victim.peerId)!
    const old = await net.client(victim).call<string>('bitflow_debugLastHeartbeat')
    await net.stopDaemon('node-3', 'SIGTERM')
    const restarted = await net.startDaemon('node-3')
    file = net.load()!
    for (const o of oracles()) {
      await eventually(`${o.name} to accept node-3's new epoch`, async () => {
        const e = (await liveness(o)).find(x => x.peerId === victim.peerId)
        return e !== undefined && e.bootEpoch === before.bootEpoch + 1 && e.status === 'available' ? e : undefined
      }, 20_000)
    }
    const rejectsBefore = await metricValue(oracles()[0]!.metricsUrl, 'bitflow_gossip_messages_total', { topic: 'liveness', verdict: 'reject' })
    // the restarted node itself re-publishes its heartbeat from the previous boot
    await net.client(restarted).call('bitflow_debugPublish', ['liveness', old])
    await eventually('the replay to be rejected', async () =>
      (await metricValue(oracles()[0]!.metricsUrl, 'bitflow_gossip_messages_total', { topic: 'liveness', verdict: 'reject' })) > rejectsBefore ? true : undefined)
    const after = (await liveness(oracles()[0]!)).find(e => e.peerId === victim.peerId)!
    expect(after.bootEpoch).toBe(before.bootEpoch + 1)
  })

  it('forged, oversized and malformed heartbeats and a non-member committee view are rejected; an unadmitted node is ignored; daemons keep running', async () => {
    const o1 = oracles()[0]!
    attacker = await spawnDaemon(join(dir, 'attacker'), ['--genesis-file', file.genesisFile, '--role', 'node', '--log-level', 'warn', '--bootstrap', byName('oracle-1').multiaddrs[0]!, '--bootstrap', byName('node-1').multiaddrs[0]!])
    const me = attacker.runtime.peerId
    await eventually('the attacker to reach the mesh', async () => (await attacker!.client.peers()).length >= 3 ? true : undefined)
    const reject = async (topic: string): Promise<number> => await metricValue(o1.metricsUrl, 'bitflow_gossip_messages_total', { topic, verdict: 'reject' })
    const ignored = async (): Promise<number> => await metricValue(o1.metricsUrl, 'bitflow_gossip_messages_total', { topic: 'liveness', verdict: 'ignore' })
    // the attacker's own heartbeats (validly signed, but not admitted in the genesis) are ignored
    await eventually('unadmitted heartbeats to be ignored', async () => (await ignored()) > 0 ? true : undefined)
    expect((await liveness(o1)).some(e => e.peerId === me)).toBe(false)

    const livenessRejects = await reject('liveness')
    const committeeRejects = await reject('committee')
    const genesisHash = (await attacker.client.nodeInfo()).genesisHash
    const stranger = Identity.generate()
    const body: HeartbeatBody = {
      v: 1, peerId: me, bootEpoch: 1, seq: 1_000_000, timestampMs: Date.now(), status: 'available',
      capacity: { taskSlots: 1, freeSlots: 1, freeMemoryBytes: 1 }, hardware: { cpuModel: 'x', cpuCores: 1, ramBytes: 1, gpus: [] },
      specializations: [], datasets: [], software: '0'
    }
    const victimBody = { ...body, peerId: byName('node-1').peerId }
    const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64')
    const bad = [
      encodeHeartbeat(body, genesisHash, m => stranger.sign(m)), // signed with a key that is not the sender's
      encodeHeartbeat(victimBody, genesisHash, m => stranger.sign(m)), // about another node
      new TextEncoder().encode(JSON.stringify({ body: { ...body, padding: 'x'.repeat(9000) }, sig: 'A'.repeat(86) + '==' })), // oversized
      new TextEncoder().encode('{"body": {"v": 1, "peerId": '), // malformed
      new TextEncoder().encode(JSON.stringify({ body: { ...body, status: 'sleeping' }, sig: 'A'.repeat(86) + '==' })) // schema
    ]
    for (const m of bad) await attacker.client.call('bitflow_debugPublish', ['liveness', b64(m)])
    // a view correctly signed with the attacker's own key: well formed, but not from a committee member
    const attackerKey = loadIdentity(join(dir, 'attacker', 'identity.json'))
    const view = encodeCommitteeMessage({ type: 'view', body: { v: 1, round: Math.floor(Date.now() / ROUND_MS), oracle: me, entries: [] } }, genesisHash, m => attackerKey.sign(m))
    await attacker.client.call('bitflow_debugPublish', ['committee', b64(view)])
    await eventually('every bad heartbeat to be rejected at oracle-1', async () => (await reject('liveness')) >= livenessRejects + bad.length ? true : undefined)
    await eventually('the non-member view to be rejected', async () => (await reject('committee')) > committeeRejects ? true : undefined)
    // nothing changed: the table still lists exactly the 4 admitted nodes, all live
    for (const o of oracles()) {
      const table = await liveness(o)
      expect(table.map(e => e.peerId).sort()).toEqual(file.daemons.filter(d => d.role === 'node').map(d => d.peerId).sort())
      expect((await net.client(o).nodeInfo()).peerId).toBe(o.peerId)
    }
  })

  it('a SIGKILLed node is offline in every oracle\'s certified table within 3 heartbeat intervals plus one round', async () => {
    const victim = byName('node-1')
    const killedAt = Date.now()
    await net.stopDaemon('node-1', 'SIGKILL')
    for (const o of oracles()) {
      await eventually(`${o.name}: node-1 offline in the certified table`, async () => {
        const r = await round(o)
        const e = r.table.find(x => x.peerId === victim.peerId)
        return r.certified && (e === undefined || e.status === 'offline') ? true : undefined
      }, 30_000)
    }
    const elapsed = Date.now() - killedAt
    // 3 missed heartbeats, then the next round's view and merge (up to two round boundaries), plus slack for a loaded machine
    expect(elapsed).toBeLessThan(3 * HEARTBEAT_MS + 2 * ROUND_MS + 6000)
    for (const o of oracles()) {
      expect((await liveness(o)).find(e => e.peerId === victim.peerId)?.status).toBe('offline')
    }
  })
})
