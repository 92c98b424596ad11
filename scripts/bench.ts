import { join } from 'node:path'
import { projectRoot } from '../daemon/paths.js'
import { toMarkdown, writeReport, type BenchResult } from './bench/report.js'
import { benchSwarm } from './bench/swarm.js'
import { benchLiveness } from './bench/liveness.js'
import { benchSandbox } from './bench/sandbox.js'

/** Every benchmark, by name. `npm run bench` runs them all; `npm run bench -- NAME...` runs some. */
const BENCHES: Record<string, () => Promise<BenchResult>> = {
  swarm: async () => await benchSwarm(),
  liveness: async () => await benchLiveness(),
  sandbox: async () => await benchSandbox()
}

const requested = process.argv.slice(2).filter(a => !a.startsWith('-'))
const unknown = requested.filter(n => !(n in BENCHES))
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`)
  process.exit(2)
}
const names = requested.length > 0 ? requested : Object.keys(BENCHES)
const results: BenchResult[] = []
for (const name of names) {
  console.error(`bench: running ${name}`)
  results.push(await BENCHES[name]!())
}
const { markdown, json } = writeReport(join(projectRoot(), '.bench'), results)
console.log(toMarkdown(results))
console.error(`bench: wrote ${markdown} and ${json}`)
