/**
 * Proof of Sampling benchmark (issue 8):
 *  1. the extra compute verification costs: the demo model's tasks run on a test net at the local
 *     preset's sampling probability (p = 0.08) until at least 200 primary tasks ran; the sandbox
 *     time of verification runs (on validators) over that of primary runs (on nodes), in percent,
 *     next to the share of tasks sampled. Expectation: about p (a verification re-runs the task once).
 *  2. the time from a fraudulent completion to its slash settled on chain: p = 1, one node with
 *     `--byzantine wrong-output` (and most of the stake, so that it is picked), one execution; the
 *     times come from the oracles' dispute record (bitflow_getSlashes).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetDaemon, type TestnetFile } from '../lib/testnet.js'
import { buildDemoModel, demoTaskpackCid, prepareDemo } from '../lib/demo-model.js'
import { addTestnetStake, chainConnection } from '../lib/slashing.js'
import { loadNetworkPreset } from '../../daemon/preset.js'
import { decodeConfig } from '../../programs/client/index.js'
import type { BitflowClient } from '../../daemon/rpc/client.js'
import { round, type BenchResult } from './report.js'

export interface PospBenchOptions {
  /** primary tasks to run for the overhead figure */
  tasks?: number
  /** executions in flight at once */
  concurrency?: number
  onProgress?: (m: string) => void
}

interface Status { overallStatus: string, taskStatuses: Array<{ status: string }> }
interface Dispute { status: string, accused: string | null, openedAt: number, decidedAt: number | null, fraudCompletedAt: number | null, recordedSeenAt: number | null, executedSeenAt: number | null }

const TERMINAL = new Set(['completed', 'failed', 'cancelled'])

async function until<T> (what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** Sandbox time per kind of run, from the daemons' `task ran in the sandbox` log lines. */
function sandboxTimes (file: TestnetFile): { primary: { runs: number, ms: number }, verification: { runs: number, ms: number } } {
  const out = { primary: { runs: 0, ms: 0 }, verification: { runs: 0, ms: 0 } }
  for (const d of file.daemons.filter(x => x.role !== 'oracle')) {
    for (const line of readFileSync(d.log, 'utf8').split('\n')) {
      if (!line.includes('"task ran in the sandbox"')) continue
      try {
        const e = JSON.parse(line) as { kind?: string, status?: string, sandboxMs?: number }
        if (e.status !== 'succeeded' || (e.kind !== 'primary' && e.kind !== 'verification')) continue
        out[e.kind].runs++
        out[e.kind].ms += e.sandboxMs ?? 0
      } catch { /* a partial line */ }
    }
  }
  return out
}

export async function benchPosp (options: PospBenchOptions = {}): Promise<BenchResult> {
  const progress = options.onProgress ?? ((m: string) => { console.error(`bench posp: ${m}`) })
  const wantTasks = options.tasks ?? 200
  const concurrency = options.concurrency ?? 6
  const p = loadNetworkPreset('local').settlement.samplingProbability
  const model = buildDemoModel(await demoTaskpackCid())
  const perExecution = model.taskIds.length
  const root = mkdtempSync(join(tmpdir(), 'bitflow-bench-posp-'))
  let overhead: { primary: { runs: number, ms: number }, verification: { runs: number, ms: number } } | undefined
  let executions = 0
  let completed = 0
  let sampled = 0
  let wallMs = 0
  let fraud: Dispute | undefined
  try {
    // 1. verification overhead at the preset's p
    progress(`test net 1: 4 oracles, 3 nodes, 2 validators, p = ${p}; ${wantTasks} tasks, ${concurrency} executions at a time`)
    const net = new Testnet(join(root, 'overhead'))
    try {
      const file = await net.up({ oracles: 4, nodes: 3, validators: 2, logLevel: 'info', specializationsFor: () => model.taskIds })
      const client = net.client(file.daemons.find(d => d.name === 'oracle-1')!)
      const demo = await prepareDemo(client)
      const total = Math.ceil(wantTasks / perExecution)
      const started = performance.now()
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < total) {
          const i = next++
          const r = await client.call<{ executionId: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: demo.inputs, maxFee: '100000', executionId: `bench-posp-${i}` }])
          const s = await until(`execution ${r.executionId} to finish`, async () => {
            const st = await client.call<Status>('bitflow_getExecutionStatus', [r.executionId])
            return TERMINAL.has(st.overallStatus) ? st : undefined
          }, 300_000)
          executions++
          if (s.overallStatus === 'completed') completed++
          if (executions % 10 === 0) progress(`${executions}/${total} executions finished`)
        }
      }
      await Promise.all(Array.from({ length: concurrency }, async () => { await worker() }))
      wallMs = performance.now() - started
      overhead = sandboxTimes(file)
      sampled = overhead.verification.runs
    } finally {
      await net.down().catch(() => {})
    }

    // 2. fraudulent completion -> slash settled
    progress('test net 2: 3 oracles, 3 nodes (node-1 --byzantine wrong-output), 2 validators, p = 1')
    const net2 = new Testnet(join(root, 'fraud'))
    try {
      const file = await net2.up({
        oracles: 3, nodes: 3, validators: 2, logLevel: 'info', specializationsFor: () => model.taskIds,
        settlement: { samplingProbability: 1 },
        argsFor: name => name === 'node-1' ? ['--byzantine', 'wrong-output'] : []
      })
      const byName = (name: string): TestnetDaemon => file.daemons.find(d => d.name === name)!
      const connection = chainConnection(file.chain!)
      const config = decodeConfig((await connection.getAccountInfo(new PublicKey(file.chain!.config)))!.data)
      // selection is stake-weighted: 50x the others' stake makes node-1 the first pick almost surely
      await addTestnetStake(net2.dir, file.chain!, byName('node-1'), config.params.minStake * 10n * 49n)
      const client = net2.client(byName('oracle-1'))
      const demo = await prepareDemo(client)
      const r = await client.call<{ executionId: string }>('bitflow_requestExecution', [{ modelId: demo.modelId, inputs: demo.inputs, maxFee: '100000', executionId: 'bench-posp-fraud' }])
      fraud = await until('the slash to be executed on chain', async () => {
        const x = await client.call<{ disputes: Dispute[] }>('bitflow_getSlashes', [r.executionId])
        return x.disputes.find(d => d.accused === byName('node-1').peerId && d.status === 'executed')
      }, 300_000, 500)
    } finally {
      await net2.down().catch(() => {})
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
  const o = overhead!
  const f = fraud!
  const from = f.fraudCompletedAt ?? f.openedAt
  const preset = loadNetworkPreset('local').settlement
  return {
    bench: 'posp',
    figures: [
      { name: 'verification compute / primary compute', value: round(100 * o.verification.ms / o.primary.ms, 1), unit: '%', baseline: { name: 'sampling probability p (the expected overhead)', value: round(100 * p, 1), unit: '%' } },
      { name: 'tasks sampled for verification', value: round(100 * sampled / Math.max(1, o.primary.runs), 1), unit: '%', baseline: { name: 'sampling probability p', value: round(100 * p, 1), unit: '%' } },
      { name: 'fraudulent completion → dispute decided', value: (f.decidedAt ?? 0) - from, unit: 'ms' },
      { name: 'fraudulent completion → slash recorded on chain (node frozen)', value: (f.recordedSeenAt ?? 0) - from, unit: 'ms' },
      { name: 'fraudulent completion → slash executed on chain', value: (f.executedSeenAt ?? 0) - from, unit: 'ms', baseline: { name: 'challenge delay', value: preset.challengeDelaySecs * 1000, unit: 'ms' } }
    ],
    notes: [
      `Overhead: ${executions} executions of the three-task demo model (${completed} completed), ${concurrency} in flight, ${round(wallMs / 1000, 0)} s; ${o.primary.runs} primary sandbox runs (${o.primary.ms} ms), ${o.verification.runs} verification runs (${o.verification.ms} ms). A verification re-runs the task once, so the expected overhead is p; the figure varies with which tasks happen to be sampled (about ${Math.round(Math.sqrt(o.primary.runs * p * (1 - p)))} sampled tasks of standard deviation).`,
      `Fraud: p = 1, node-1 reports perturbed outputs; times from its completion to the oracles deciding the dispute (after the re-execution's result), to the RecordSlash transaction being seen confirmed, and to ExecuteSlash after the ${preset.challengeDelaySecs} s challenge delay.`
    ]
  }
}
