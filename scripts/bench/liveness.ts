import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { Testnet, type TestnetDaemon } from '../lib/testnet.js'
import type { BenchResult } from './report.js'
import { loadNetworkPreset } from '../../daemon/preset.js'

const CLK_TCK = 100

function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

async function gossipBytes (d: TestnetDaemon): Promise<number> {
  const text = await (await fetch(d.metricsUrl)).text()
  let total = 0
  for (const line of text.split('\n')) if (line.startsWith('bitflow_gossip_bytes_total{')) total += Number(line.split(' ').pop())
  return total
}

/**
 * Liveness benchmark: 4 oracles and 26 nodes. Time from launch until the certified committee table
 * lists every node, then gossip bytes and CPU per daemon over a steady window.
 */
export async function benchLiveness (options: { oracles?: number, nodes?: number, windowMs?: number } = {}): Promise<BenchResult> {
  const oracles = options.oracles ?? 4
  const nodes = options.nodes ?? 26
  const windowMs = options.windowMs ?? 30_000
  const dir = mkdtempSync(join(tmpdir(), 'bitflow-bench-liveness-'))
  const net = new Testnet(join(dir, 'net'))
  try {
    const started = performance.now()
    const file = await net.up({ oracles, nodes, validators: 0, logLevel: 'warn', timeoutMs: 180_000, chain: false })
    const upMs = performance.now() - started
    const oracle = file.daemons.find(d => d.role === 'oracle')!
    const nodeIds = new Set(file.daemons.filter(d => d.role === 'node').map(d => d.peerId))
    let completeMs = Number.NaN
    for (;;) {
      const r = await net.client(oracle).call<{ certified: boolean, table: Array<{ peerId: string, status: string }> }>('bitflow_committeeRound')
      if (r.certified && r.table.filter(e => nodeIds.has(e.peerId) && e.status !== 'offline').length === nodeIds.size) {
        completeMs = performance.now() - started
        break
      }
      if (performance.now() - started > 180_000) throw new Error('the certified table never listed every node')
      await sleep(100)
    }
    const bytes0 = await Promise.all(file.daemons.map(gossipBytes))
    const cpu0 = file.daemons.map(d => cpuSeconds(d.pid))
    const t0 = performance.now()
    await sleep(windowMs)
    const seconds = (performance.now() - t0) / 1000
    const bytes1 = await Promise.all(file.daemons.map(gossipBytes))
    const cpu1 = file.daemons.map(d => cpuSeconds(d.pid))
    const perMinute = (i: number): number => ((bytes1[i]! - bytes0[i]!) / seconds) * 60
    const cpuPct = (i: number): number => (100 * (cpu1[i]! - cpu0[i]!)) / seconds
    const idx = (role: string): number[] => file.daemons.map((d, i) => d.role === role ? i : -1).filter(i => i >= 0)
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    return {
      bench: 'liveness',
      figures: [
        { name: `launch until all ${nodes} nodes have ≥3 peers (${oracles} oracles + ${nodes} nodes)`, value: upMs / 1000, unit: 's' },
        { name: 'launch until the certified table lists every node', value: completeMs / 1000, unit: 's' },
        { name: 'gossip payload per oracle', value: mean(idx('oracle').map(perMinute)) / 1024, unit: 'KiB/min' },
        { name: 'gossip payload per node', value: mean(idx('node').map(perMinute)) / 1024, unit: 'KiB/min' },
        { name: 'CPU per oracle', value: mean(idx('oracle').map(cpuPct)), unit: '% of a core' },
        { name: 'CPU per node', value: mean(idx('node').map(cpuPct)), unit: '% of a core' }
      ],
      notes: [
        `Steady-state window of ${Math.round(seconds)} s after the table was complete; local preset timings (heartbeat ${loadNetworkPreset('local').params.heartbeatIntervalMs / 1000} s, round ${loadNetworkPreset('local').params.roundIntervalMs / 1000} s).`,
        `All ${oracles + nodes} daemons share this machine's cores: when their total demand passes the cores available, start-up times stretch.`,
        'Gossip payload counts message bytes received (validated) plus published by each daemon; gossipsub framing and IHAVE/IWANT control traffic are not included.'
      ]
    }
  } finally {
    await net.down().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}
