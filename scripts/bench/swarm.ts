import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { Testnet } from '../lib/testnet.js'
import { percentile, type BenchResult } from './report.js'

function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? Number.NaN : Number(m[1]) / 1024
}

/**
 * Swarm benchmark: a test net of `size` daemon processes on loopback. Time until connected, memory
 * per daemon, and gossip latency at a steady 50 msg/s, against libp2p ping round trips measured
 * between the same daemons in the same run.
 */
export async function benchSwarm (options: { size?: number, messages?: number, rate?: number } = {}): Promise<BenchResult> {
  const size = options.size ?? 10
  const messages = options.messages ?? 500
  const rate = options.rate ?? 50
  const dir = mkdtempSync(join(tmpdir(), 'bitflow-bench-swarm-'))
  const net = new Testnet(join(dir, 'net'))
  try {
    const started = performance.now()
    const file = await net.up({ oracles: 3, nodes: size - 4, validators: 1, logLevel: 'warn', chain: false })
    const readyMs = performance.now() - started
    const full = Math.min(8, size - 1)
    for (;;) {
      const counts = await Promise.all(file.daemons.map(async d => (await net.client(d).peers()).length))
      if (counts.every(c => c >= full)) break
      if (performance.now() - started > 120_000) throw new Error(`swarm never reached ${full} peers each: ${counts.join(',')}`)
      await sleep(100)
    }
    const meshedMs = performance.now() - started

    const [origin, ...receivers] = file.daemons
    // baseline: libp2p ping round trips between the origin and every receiver
    const pings: number[] = []
    for (let round = 0; round < 3; round++) {
      for (const r of receivers) {
        const res = await net.client(origin!).connect(r.multiaddrs[0]!)
        if (res.latencyMs !== null) pings.push(res.latencyMs)
      }
    }

    const sinceMs = Date.now()
    const { ids } = await net.client(origin!).publishProbe({ count: messages, ratePerSecond: rate })
    const idSet = new Set(ids)
    const latencies: number[] = []
    let delivered = 0
    const deadline = Date.now() + 20_000
    for (const r of receivers) {
      let records = await net.client(r).probes({ origin: origin!.peerId, sinceMs })
      while (records.filter(x => idSet.has(x.id)).length < ids.length && Date.now() < deadline) {
        await sleep(200)
        records = await net.client(r).probes({ origin: origin!.peerId, sinceMs })
      }
      for (const rec of records) {
        if (!idSet.has(rec.id)) continue
        delivered++
        latencies.push(rec.latencyMs)
      }
    }
    const rss = file.daemons.map(d => rssMiB(d.pid))
    const pingP50 = percentile(pings, 50)
    return {
      bench: 'swarm',
      figures: [
        { name: `time until every daemon has ≥3 peers (${size} daemons)`, value: readyMs / 1000, unit: 's' },
        { name: `time until every daemon has ≥${full} peers`, value: meshedMs / 1000, unit: 's' },
        { name: 'RSS per daemon, mean', value: rss.reduce((a, b) => a + b, 0) / rss.length, unit: 'MiB' },
        { name: 'RSS per daemon, max', value: Math.max(...rss), unit: 'MiB' },
        { name: `gossip latency p50 at ${rate} msg/s`, value: percentile(latencies, 50), unit: 'ms', baseline: { name: 'libp2p ping RTT p50', value: pingP50, unit: 'ms' } },
        { name: `gossip latency p99 at ${rate} msg/s`, value: percentile(latencies, 99), unit: 'ms', baseline: { name: 'libp2p ping RTT p50', value: pingP50, unit: 'ms' } },
        { name: 'gossip delivery', value: (100 * delivered) / (ids.length * receivers.length), unit: '%' }
      ],
      notes: [
        `${messages} probes published by one daemon at ${rate} msg/s and timed at ${receivers.length} receivers (same clock, one machine).`,
        'Latency includes JSON encoding, gossipsub signing/verification, validation and mesh forwarding.'
      ]
    }
  } finally {
    await net.down().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}
