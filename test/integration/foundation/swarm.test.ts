import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { Testnet, type TestnetFile } from '../../../scripts/lib/testnet.js'
import { processAlive } from '../../../daemon/datadir.js'
import type { PeerEvent } from '../../../daemon/rpc/types.js'
import { tempDir, spawnDaemon, cleanup, eventually, childPids, type SpawnedDaemon } from '../../helpers/daemon.js'

const dir = tempDir('swarm')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile
const extra: SpawnedDaemon[] = []

beforeAll(async () => {
  file = await net.up({ oracles: 3, nodes: 2, validators: 0, logLevel: 'warn' })
}, 120_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(file?.daemons.map(d => d.pid) ?? []), ...extra.map(d => d.pid)], [dir])
})

describe('a five-daemon test net', () => {
  it('writes testnet.json in the public shape, with the daemon pids themselves', () => {
    const onDisk = JSON.parse(readFileSync(net.file, 'utf8')) as TestnetFile
    expect(onDisk.network).toBe('local')
    expect(onDisk.daemons).toHaveLength(5)
    expect(onDisk.daemons.map(d => d.role)).toEqual(['oracle', 'oracle', 'oracle', 'node', 'node'])
    for (const d of onDisk.daemons) {
      expect(d.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(d.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      expect(d.peerId).toMatch(/^12D3KooW/)
      expect(d.solanaAddress).toMatch(/^[1-9A-HJ-NP-Za-km-z]{32,44}$/)
      // the pid is the daemon process: its command line runs the daemon on this data dir
      expect(readFileSync(`/proc/${d.pid}/cmdline`, 'utf8')).toContain(d.dataDir)
      expect(readFileSync(`/proc/${d.pid}/cmdline`, 'utf8')).toContain('cli.js')
      expect(d.log.endsWith('.log')).toBe(true)
    }
  })

  it('every daemon reports at least 3 peers over JSON-RPC', async () => {
    for (const d of file.daemons) {
      const peers = await net.client(d).peers()
      expect(peers.length, d.name).toBeGreaterThanOrEqual(3)
      for (const p of peers) expect(file.daemons.map(x => x.peerId)).toContain(p.peerId)
    }
  })

  it('a probe published on one daemon reaches all the others over gossip', async () => {
    const [origin, ...others] = file.daemons
    const { ids } = await net.client(origin!).publishProbe({ count: 1 })
    for (const d of others) {
      const got = await eventually(`probe at ${d.name}`, async () => {
        const records = await net.client(d).probes({ ids })
        return records.length === 1 ? records[0] : undefined
      })
      expect(got.origin).toBe(origin!.peerId)
      expect(got.latencyMs).toBeGreaterThanOrEqual(0)
    }
    // and the publisher itself does not count its own probe as received
    expect(await net.client(origin!).probes({ ids })).toEqual([])
  })

  it('exports bitflow_ and libp2p metrics', async () => {
    const text = await (await fetch(file.daemons[1]!.metricsUrl)).text() // received the probe above
    expect(text).toMatch(/^bitflow_peers \d+/m)
    expect(text).toMatch(/^bitflow_gossip_messages_total\{topic="probe",verdict="accept"\} \d+/m)
    expect(text).toMatch(/^bitflow_process_resident_memory_bytes \d+/m)
    expect(text).toMatch(/^libp2p_/m)
  })

  it('a daemon started by hand with one --bootstrap address joins the swarm, and peers see it connect and go', async () => {
    const anchor = file.daemons[4]!
    const events: PeerEvent[] = []
    const sub = await net.client(file.daemons[0]!).subscribePeers(e => { events.push(e) })
    try {
      const hand = await spawnDaemon(join(dir, 'hand'), ['--genesis-file', file.genesisFile, '--bootstrap', anchor.multiaddrs[0]!, '--log-level', 'warn'])
      extra.push(hand)
      // it finds the rest of the swarm through the DHT, not only the one address it was given
      const peers = await eventually('hand-started daemon to see the swarm', async () => {
        const p = await hand.client.peers()
        return p.length >= 4 ? p : undefined
      }, 30_000)
      const known = new Set(file.daemons.map(d => d.peerId))
      expect(peers.filter(p => known.has(p.peerId)).length).toBeGreaterThanOrEqual(4)
      // gossip reaches it too
      const { ids } = await net.client(file.daemons[1]!).publishProbe({ count: 1 })
      await eventually('probe at the hand-started daemon', async () => (await hand.client.probes({ ids })).length === 1 ? true : undefined)
      // oracle-1 saw it connect
      await eventually('connect event on oracle-1', async () => events.find(e => e.event === 'connect' && e.peerId === hand.runtime.peerId))
      expect(childPids(hand.pid)).toEqual([])
      const { code, ms } = await hand.stop()
      expect(code).toBe(0)
      expect(ms).toBeLessThan(5000)
      expect(processAlive(hand.pid)).toBe(false)
      await eventually('disconnect event on oracle-1', async () => events.find(e => e.event === 'disconnect' && e.peerId === hand.runtime.peerId))
    } finally {
      await sub.close()
    }
  })

  it('status lists every daemon as running, and down stops them all by pid', async () => {
    const rows = await net.status()
    expect(rows.map(r => r.alive)).toEqual([true, true, true, true, true])
    const { stopped, killed } = await net.down()
    expect(stopped.filter(n => n !== 'chain')).toHaveLength(5)
    expect(stopped).toContain('chain')
    expect(killed).toEqual([])
    for (const d of file.daemons) expect(processAlive(d.pid)).toBe(false)
    expect((await net.status()).every(r => !r.alive)).toBe(true)
  })
})
