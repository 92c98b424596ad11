import { Command } from 'commander'
import { setTimeout as sleep } from 'node:timers/promises'
import { Testnet } from './lib/testnet.js'

/**
 * The main job: bring up a local test net, show it working, and stop it again (or keep it running
 * with --keep). Later capabilities extend this into a full demo execution.
 */
const program = new Command('demo')
  .option('--keep', 'leave the test net running afterwards (stop it with: npm run testnet -- down)')
  .option('--dir <path>', 'test net directory (default .testnet/)')
  .parse(process.argv)
const flags = program.opts<{ keep?: boolean, dir?: string }>()

const net = new Testnet(flags.dir)
if (net.running().length > 0) {
  console.log('demo: stopping the test net that is already running')
  await net.down()
}
const oracles = 4
const nodes = 3
const validators = 1
console.log(`demo: starting a local test net: ${oracles} oracles, ${nodes} nodes, ${validators} validator (separate processes on loopback)`)
const started = performance.now()
const file = await net.up({ oracles, nodes, validators, onProgress: m => { console.log(`demo: ${m}`) } })
console.log(`demo: test net ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${net.file})\n`)

let failed = false
try {
  for (const row of await net.status()) {
    console.log(`  ${row.name.padEnd(12)} ${row.role.padEnd(10)} pid ${String(row.pid).padEnd(8)} peers ${String(row.peers).padEnd(3)} ${row.rpcUrl}  ${row.peerId}`)
  }
  const [origin, ...others] = file.daemons
  console.log(`\ndemo: ${origin!.name} publishes a signed probe on /bitflow/local/probe/1; every daemon reports when it arrived:`)
  const { ids } = await net.client(origin!).publishProbe({ count: 1 })
  const deadline = Date.now() + 15_000
  let reached = 0
  for (const d of others) {
    let record
    while (record === undefined && Date.now() < deadline) {
      record = (await net.client(d).probes({ ids }))[0]
      if (record === undefined) await sleep(100)
    }
    if (record !== undefined) reached++
    console.log(`  ${d.name.padEnd(12)} ${record !== undefined ? `received after ${record.latencyMs} ms` : 'NOT received'}`)
  }
  failed = reached !== others.length
  console.log(`\ndemo: gossip reached ${reached}/${others.length} daemons`)
} finally {
  if (flags.keep === true) {
    console.log('demo: the test net keeps running; see `npm run testnet -- status`, stop it with `npm run testnet -- down`')
  } else {
    await net.down()
    console.log(`demo: test net stopped; logs and data kept in ${net.dir}`)
  }
}
process.exit(failed ? 1 : 0)
