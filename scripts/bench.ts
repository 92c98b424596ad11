import { join } from 'node:path'
import { projectRoot } from '../daemon/paths.js'
import { toMarkdown, writeReport, type BenchResult } from './bench/report.js'
import { benchSwarm } from './bench/swarm.js'
import { benchTransfer } from './bench/transfer.js'
import { benchSettlement } from './bench/settlement.js'
import { benchLiveness } from './bench/liveness.js'
import { benchSandbox } from './bench/sandbox.js'
import { benchExecution } from './bench/execution.js'
import { benchPosp } from './bench/posp.js'

/** Every benchmark, by name. `npm run bench` runs them all; `npm run bench -- NAME...` runs some. */
const BENCHES: Record<string, () => Promise<BenchResult>> = {
  swarm: async () => await benchSwarm(),
  transfer: async () => await benchTransfer(),
  settlement: async () => await benchSettlement(),
  liveness: async () => await benchLiveness(),
  execution: async () => await benchExecution(),
  posp: async () => await benchPosp(),
  sandbox: async () => {
    const r = await benchSandbox()
    return {
      bench: 'sandbox',
      figures: [
        { name: 'sandboxed python3 run p50', value: r.sandboxMs.p50, unit: 'ms', baseline: { name: 'same python3 on the host p50', value: r.hostMs.p50, unit: 'ms' } },
        { name: 'sandboxed python3 run p95', value: r.sandboxMs.p95, unit: 'ms', baseline: { name: 'same python3 on the host p95', value: r.hostMs.p95, unit: 'ms' } },
        { name: 'sandbox overhead p50', value: r.overheadMs.p50, unit: 'ms', goal: '<= 250 ms (stretch <= 50 ms)' },
        { name: 'sandbox overhead p95', value: r.overheadMs.p95, unit: 'ms' }
      ],
      notes: [`${r.runs} runs each of \`python3 -I -S -c pass\`, sandbox and host interleaved; the sandbox run is create + start + wait + inspect + remove + output copy-out.`]
    }
  }
}

const requested = process.argv.slice(2).filter(a => !a.startsWith('-'))
const unknown = requested.filter(n => !(n in BENCHES))
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`)
  process.exit(2)
}
const names = requested.length > 0 ? requested : Object.keys(BENCHES)
const results: BenchResult[] = []
let failed = 0
for (const name of names) {
  console.error(`bench: running ${name}`)
  try {
    results.push(await BENCHES[name]!())
  } catch (err) {
    // one broken benchmark must not cost the figures of the others: reported, and the exit code says so
    failed++
    console.error(`bench: ${name} failed: ${(err as Error).stack ?? String(err)}`)
    results.push({ bench: name, figures: [], notes: [`FAILED: ${(err as Error).message}`] })
  }
}
const { markdown, json } = writeReport(join(projectRoot(), '.bench'), results)
console.log(toMarkdown(results))
console.error(`bench: wrote ${markdown} and ${json}`)
if (failed > 0) process.exitCode = 1
