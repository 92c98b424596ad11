import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import { Connection, PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile } from './lib/testnet.js'
import { DataDir } from '../daemon/datadir.js'
import { buildDemoModel, compareWithReference, demoTaskpackCid, demoTaskpackDir, prepareDemo, soleTensor, tensorRows, type DemoModel } from './lib/demo-model.js'
import { describeChainExecution, nodeNames, readChainExecution } from './lib/demo-chain.js'
import { describeStatus, describeTransition, newExecutionId, requestExecution, waitForExecution, watchExecution } from '../daemon/commands/execution-client.js'
import type { GetTensorResult } from '../daemon/content/types.js'
import { byzantineUpOptions, prepareByzantine, reportSlashes } from './lib/demo-byzantine.js'

/**
 * The main job: bring up a local test net whose nodes specialize in the demo model's tasks, run
 * the model (three layers of the example taskpack examples/taskpacks/dense) as one execution,
 * stream its state transitions, compare its output with the reference computed here, show the
 * assignments on chain, and stop the net (or keep it with --keep). Ends with one line:
 *   RESULT execution=<id> state=<final state> output_matches_reference=<true|false>
 * and exits 0 only when the output matches.
 */
const program = new Command('demo')
  .option('--keep', 'leave the test net running afterwards (stop it with: npm run testnet -- down)')
  .option('--dir <path>', 'test net directory (default .testnet/)')
  .option('--byzantine', 'node-1 reports wrong outputs (every result sampled, two validators): watch the committee slash it; prints SLASHED lines')
  .option('--timeout <seconds>', 'how long to wait for the execution to finish (default 100)', v => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
    return n
  })
  .parse(process.argv)
const flags = program.opts<{ keep?: boolean, dir?: string, timeout?: number, byzantine?: boolean }>()
if (flags.byzantine === true) flags.timeout ??= 240
const say = (m: string): void => { console.log(`demo: ${m}`) }
/** the daemon that publishes the taskpack and requests the execution; every daemon allow-lists it as a publisher */
const PUBLISHER = 'oracle-1'

interface Outcome { executionId: string, state: string, matches: boolean }

async function runExecution (net: Testnet, file: TestnetFile, planned: DemoModel): Promise<Outcome> {
  const requesterDaemon = file.daemons.find(d => d.name === PUBLISHER)!
  const client = net.client(requesterDaemon)
  const names = new Map(file.daemons.map(d => [d.peerId, d.name]))

  say(`${requesterDaemon.name} publishes the taskpack, stores the weights and the input, registers the model`)
  const prepared = await prepareDemo(client, { taskpackDir: demoTaskpackDir() })
  if (prepared.modelId !== planned.modelId) throw new Error(`the daemon registered model ${prepared.modelId}, but the nodes specialize in ${planned.modelId}`)
  say(`model ${prepared.modelId} registered; input x = ${prepared.inputs.x}`)

  const executionId = newExecutionId('demo')
  const started = performance.now()
  const stamp = (): string => `+${((performance.now() - started) / 1000).toFixed(1)} s`.padStart(8)
  const sub = await watchExecution(client, executionId, e => { console.log(`  ${stamp()}  ${describeTransition(e, p => names.get(p))}`) })
  let state = 'not-requested'
  try {
    const req = await requestExecution(client, { modelId: prepared.modelId, inputs: prepared.inputs, executionId })
    state = 'requested'
    say(`requested execution ${executionId}: escrowed ${req.escrowed} (the minimum fee, ${req.pricePerTask} per task) at slot ${req.requestSlot}; account ${req.account}`)
    const timeoutS = flags.timeout ?? 100
    say(`state transitions as the requester's daemon streams them (waiting up to ${timeoutS} s):`)
    const { status, timedOut } = await waitForExecution(client, executionId, { timeoutMs: timeoutS * 1000 })
    state = status.overallStatus
    if (timedOut) say(`no terminal state after ${timeoutS} s; the execution is ${state}`)
    console.log(`\n${describeStatus(status)}\n`)

    let matches = false
    const outUri = status.outputUris.y
    if (state === 'completed' && outUri !== null && outUri !== undefined) {
      const got = await client.call<GetTensorResult>('bitflow_getTensor', [outUri])
      if (got.safetensorsBase64 === undefined) throw new Error(`output y (${got.bytes} bytes) did not come back inline`)
      const y = soleTensor(Buffer.from(got.safetensorsBase64, 'base64'))
      const verdict = compareWithReference('y', y, prepared.reference)
      matches = verdict.match
      say(`output y (${outUri}) next to the reference computed here in float32:`)
      const fmt = (r: number[]): string => `[${r.map(v => v.toFixed(6)).join(', ')}]`
      const ref = tensorRows(prepared.reference)
      tensorRows(y).forEach((row, i) => { console.log(`  row ${i}  output ${fmt(row)}  reference ${fmt(ref[i] ?? [])}`) })
      say(verdict.reason)
    } else {
      say('no output to compare: the execution did not complete')
    }

    say('on chain (read from the settlement program\'s accounts):')
    const connection = new Connection(file.chain!.rpcUrl, 'confirmed')
    const programId = new PublicKey(file.chain!.programId)
    const chain = await readChainExecution(connection, programId, new PublicKey(req.account), planned.taskIds)
    for (const line of describeChainExecution(chain, nodeNames(programId, new PublicKey(file.chain!.config), file.daemons))) console.log(`  ${line}`)
    return { executionId, state, matches }
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`)
    return { executionId, state, matches: false }
  } finally {
    await sub.close().catch(() => {})
  }
}

const net = new Testnet(flags.dir)
if (net.running().length > 0) {
  say('stopping the test net that is already running')
  await net.down()
}
const taskpackCid = await demoTaskpackCid(demoTaskpackDir())
const planned = buildDemoModel(taskpackCid)
say('the demo model: x [4, 8] -> dense + relu -> h1 [4, 16] -> dense + relu -> h2 [4, 16] -> dense + softmax -> y [4, 3]')
say(`  three tasks of the example taskpack bitflow-dense (${taskpackCid}), seeded weights; model id ${planned.modelId}`)

const oracles = 4
const nodes = 3
const validators = flags.byzantine === true ? 2 : 1
// nodes and the validator specialize in the model's tasks: nodes take primary attempts, the validator re-executes sampled ones
say(`starting a local test net: ${oracles} oracles, ${nodes} nodes, ${validators} validator (separate processes on loopback), specialized in the model's tasks`)
const started = performance.now()
/** A config file allow-listing the publisher (nodes run taskpacks only from allow-listed publishers). */
const trustConfig = (): string => {
  const path = join(net.dir, 'publishers.yaml')
  if (!existsSync(path)) {
    const publisher = DataDir.open(join(net.dir, PUBLISHER)).loadIdentity().peerId.toString()
    writeFileSync(path, `# the demo's taskpack is published by ${PUBLISHER}\npublishers:\n  allow:\n    - ${publisher}\n`)
  }
  return path
}
const file = await net.up({ oracles, nodes, validators, specializationsFor: () => planned.taskIds, argsFor: () => ['--config', trustConfig()], onProgress: m => { say(m) }, ...(flags.byzantine === true ? byzantineUpOptions(planned.taskIds, trustConfig) : {}) })
say(`test net ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${net.file})\n`)

let outcome: Outcome = { executionId: '-', state: 'not-requested', matches: false }
let slashed = flags.byzantine !== true
try {
  for (const row of await net.status()) {
    console.log(`  ${row.name.padEnd(12)} ${row.role.padEnd(10)} pid ${String(row.pid).padEnd(8)} peers ${String(row.peers).padEnd(3)} ${row.rpcUrl}  ${row.peerId}`)
  }
  console.log('')
  if (flags.byzantine === true) await prepareByzantine(net, file, say)
  outcome = await runExecution(net, file, planned)
  if (flags.byzantine === true) slashed = await reportSlashes(file, 90_000, say)
} catch (err) {
  console.error(`demo: ${(err as Error).message}`)
} finally {
  if (flags.keep === true) {
    say('the test net keeps running; see `npm run testnet -- status`, stop it with `npm run testnet -- down`')
  } else {
    await net.down()
    say(`test net stopped; logs and data kept in ${net.dir}`)
  }
}
console.log(`RESULT execution=${outcome.executionId} state=${outcome.state} output_matches_reference=${String(outcome.matches)}`)
process.exit(outcome.matches && slashed ? 0 : 1)
