import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { Testnet, TestnetError } from './lib/testnet.js'

const count = (name: string) => (v: string): number => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`)
  return Number(v)
}

interface UpFlags { oracles: number, nodes: number, validators: number, dir?: string, logLevel: string, timeout: number, chain: string | boolean, specialization?: string[], sampling?: number }

function addUpOptions (cmd: Command): Command {
  return cmd
    .option('--oracles <n>', 'oracle daemons (the committee)', count('--oracles'), 3)
    .option('--nodes <n>', 'compute node daemons', count('--nodes'), 3)
    .option('--validators <n>', 'validator daemons', count('--validators'), 1)
    .option('--log-level <level>', 'daemon log level', 'info')
    .option('--timeout <seconds>', 'how long to wait for the swarm to connect', count('--timeout'), 120)
    .option('--specialization <taskId>', 'task id every node and validator specializes in (repeatable; default demo)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--chain <kind>', 'the local chain: litesvm (default) or solana-test-validator (when on PATH)')
    .option('--no-chain', 'do not start a local Solana chain')
    .option('--sampling <p>', 'probability that a completed task is re-executed by a validator (default: the local preset, 0.08)', parseProbability)
}

function parseProbability (v: string): number {
  const p = Number(v)
  if (!(p > 0 && p <= 1)) throw new TestnetError(`--sampling must be a probability in (0, 1], not '${v}'`)
  return p
}

function parseChainKind (v: string): 'litesvm' | 'solana-test-validator' {
  if (v !== 'litesvm' && v !== 'solana-test-validator') throw new TestnetError(`--chain must be litesvm or solana-test-validator, not '${v}'`)
  return v
}

async function up (flags: UpFlags, dir: string | undefined): Promise<Testnet> {
  const net = new Testnet(dir)
  const started = performance.now()
  const file = await net.up({
    oracles: flags.oracles,
    nodes: flags.nodes,
    validators: flags.validators,
    logLevel: flags.logLevel,
    timeoutMs: flags.timeout * 1000,
    chain: flags.chain !== false,
    ...(typeof flags.chain === 'string' ? { chainKind: parseChainKind(flags.chain) } : {}),
    ...(flags.specialization !== undefined ? { specializationsFor: () => flags.specialization! } : {}),
    ...(flags.sampling !== undefined ? { settlement: { samplingProbability: flags.sampling } } : {}),
    onProgress: m => { console.log(`testnet: ${m}`) }
  })
  console.log(`testnet: ${file.daemons.length} daemons up in ${((performance.now() - started) / 1000).toFixed(1)} s; wrote ${net.file}`)
  return net
}

async function printStatus (net: Testnet): Promise<void> {
  const rows = await net.status()
  if (rows.length === 0) { console.log(`no test net in ${net.dir}`); return }
  const table = rows.map(r => ({ name: r.name, role: r.role, pid: String(r.pid), state: r.alive ? 'running' : 'stopped', peers: r.peers === null ? '-' : r.peers < 0 ? 'no answer' : String(r.peers), rpc: r.rpcUrl, peerId: r.peerId }))
  const cols = ['name', 'role', 'pid', 'state', 'peers', 'rpc', 'peerId'] as const
  const width = Object.fromEntries(cols.map(c => [c, Math.max(c.length, ...table.map(t => t[c].length))]))
  console.log(cols.map(c => c.toUpperCase().padEnd(width[c]!)).join('  '))
  for (const t of table) console.log(cols.map(c => t[c].padEnd(width[c]!)).join('  '))
  const chain = net.load()?.chain
  if (chain !== undefined) console.log(`\nchain: ${chain.rpcUrl} (ws ${chain.wsUrl}) pid ${chain.pid}; program ${chain.programId}; config ${chain.config}; stake mint ${chain.stakeMint}`)
}

async function down (net: Testnet): Promise<void> {
  const { stopped, killed } = await net.down()
  const daemons = stopped.filter(n => n !== 'chain')
  if (stopped.length === 0) console.log(`no running test net in ${net.dir}`)
  else console.log(`testnet: stopped ${daemons.length} daemons${stopped.includes('chain') ? ' and the chain' : ''}${killed.length > 0 ? ` (${killed.join(', ')} needed SIGKILL)` : ''}; data and logs kept in ${net.dir}`)
}

const program = new Command('testnet')
  .description('Local multi-process BitFlow test net on loopback.\nWithout a verb: start one and keep it in the foreground until Ctrl-C.')
  .option('--dir <path>', 'test net directory (default .testnet/ in the project)')
  .enablePositionalOptions()
  .exitOverride()

addUpOptions(program).action(async (flags: UpFlags) => {
  const net = await up(flags, flags.dir)
  await printStatus(net)
  console.log('testnet: running in the foreground; Ctrl-C stops it')
  await new Promise<void>(resolve => {
    // signal listeners alone do not keep Node's event loop alive
    const keepAlive = setInterval(() => {}, 60_000)
    const stop = (): void => { clearInterval(keepAlive); resolve() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await down(net)
})

addUpOptions(program.command('up').description('start a test net and return once every daemon has peers'))
  .action(async (flags: UpFlags) => { await up(flags, program.opts<{ dir?: string }>().dir) })
program.command('status').description('show the daemons and their peer counts')
  .action(async () => { await printStatus(new Testnet(program.opts<{ dir?: string }>().dir)) })
program.command('down').description('stop the daemons by pid; keeps data and logs')
  .action(async () => { await down(new Testnet(program.opts<{ dir?: string }>().dir)) })

for (const c of program.commands) c.exitOverride()
try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 2)
  if (err instanceof TestnetError) { console.error(`testnet: ${err.message}`); process.exit(1) }
  throw err
}
