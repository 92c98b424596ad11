#!/usr/bin/env node
import { existsSync, writeFileSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { OptionError, BitflowError } from './errors.js'
import { resolveOptions, parsePort, parseRoles, parseLogLevel, parseCount, ENV_VARIABLES, type PartialOptions } from './options.js'
import { createLogger } from './logger.js'
import { DataDir } from './datadir.js'
import { parseKeypairJson } from './identity.js'
import { commentedConfig } from './configfile.js'
import { BitflowDaemon } from './node.js'
import { softwareVersion } from './paths.js'
import { registerTaskpackCommands } from './commands/taskpack.js'
import { registerStakeCommands } from './commands/stake.js'
import { registerAgentCommands } from './commands/agent.js'
import { registerTensorCommands } from './commands/tensor.js'
import { registerModelCommands } from './commands/model.js'
import { registerDatasetCommands } from './commands/dataset.js'
import { registerExecCommands } from './commands/exec.js'

/** commander argument parsers that report errors naming the option */
const asArg = <T>(fn: (v: string, name: string) => T, name: string) => (value: string): T => {
  try {
    return fn(value, name)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}
const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

interface RunFlags {
  role?: string[]
  network?: string
  dataDir?: string
  config?: string
  genesisFile?: string
  listen?: string[]
  announce?: string[]
  bootstrap?: string[]
  rpcPort?: number
  rpcHost?: string
  metricsPort?: number
  metrics?: boolean
  solanaRpc?: string
  programId?: string
  logLevel?: PartialOptions['logLevel']
  specialization?: string[]
  taskSlots?: number
  simulateGpu?: string
  byzantine?: 'equivocate' | 'wrong-output' | 'lazy-copy' | 'no-show'
}

function flagsToLayer (f: RunFlags): PartialOptions {
  const layer: PartialOptions = {}
  if (f.role !== undefined) layer.roles = f.role as PartialOptions['roles']
  if (f.network !== undefined) layer.network = f.network
  if (f.dataDir !== undefined) layer.dataDir = resolve(f.dataDir)
  if (f.genesisFile !== undefined) layer.genesisFile = resolve(f.genesisFile)
  if (f.listen !== undefined) layer.listen = f.listen
  if (f.announce !== undefined) layer.announce = f.announce
  if (f.bootstrap !== undefined) layer.bootstrap = f.bootstrap
  if (f.rpcPort !== undefined || f.rpcHost !== undefined) layer.rpc = { ...(f.rpcPort !== undefined ? { port: f.rpcPort } : {}), ...(f.rpcHost !== undefined ? { host: f.rpcHost } : {}) }
  if (f.metricsPort !== undefined || f.metrics === false) layer.metrics = { ...(f.metricsPort !== undefined ? { port: f.metricsPort } : {}), ...(f.metrics === false ? { enabled: false } : {}) }
  if (f.solanaRpc !== undefined) layer.solanaRpc = f.solanaRpc
  if (f.programId !== undefined) layer.programId = f.programId
  if (f.logLevel !== undefined) layer.logLevel = f.logLevel
  if (f.specialization !== undefined || f.taskSlots !== undefined || f.simulateGpu !== undefined) {
    layer.node = {
      ...(f.specialization !== undefined ? { specializations: f.specialization } : {}),
      ...(f.taskSlots !== undefined ? { taskSlots: f.taskSlots } : {}),
      ...(f.simulateGpu !== undefined ? { simulateGpu: f.simulateGpu } : {})
    }
  }
  if (f.byzantine !== undefined) layer.byzantine = f.byzantine
  return layer
}

function addLocationOptions (cmd: Command): Command {
  return cmd
    .option('--network <name>', 'network preset from bootstrap/: local, devnet, mainnet')
    .option('--data-dir <path>', 'data directory (default ~/.bitflow/<network>)')
    .option('--config <file>', 'YAML config file')
}

async function runDaemon (flags: RunFlags): Promise<void> {
  const { options, preset, configPath } = resolveOptions({ flags: flagsToLayer(flags), env: process.env, ...(flags.config !== undefined ? { configPath: flags.config } : {}) })
  const log = createLogger(options.logLevel)
  const daemon = new BitflowDaemon(options, preset, log)
  let signals = 0
  const shutdown = (signal: string): void => {
    signals++
    if (signals > 1) { log.warn({ signal }, 'second signal: exiting now'); process.exit(1) }
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => { log.error('shutdown took over 8 s: exiting'); process.exit(1) }, 8000)
    force.unref()
    daemon.stop().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', () => { shutdown('SIGINT') })
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  if (configPath !== undefined) log.info({ configPath }, 'config file loaded')
  await daemon.start()
}

export function buildCli (): Command {
  const program = new Command('bitflowd')
  program
    .description('BitFlow daemon: a peer-to-peer compute network for machine learning on private data.\nRun with no subcommand to start the daemon.')
    .version(softwareVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .addHelpText('after', `\nEnvironment overrides: ${ENV_VARIABLES.join(', ')}, BITFLOW_CONFIG.\nLayering: defaults <- network preset <- config file <- environment <- flags.`)

  addLocationOptions(program)
    .option('--role <roles>', 'roles, comma-separated: oracle, node, validator', asArg(parseRoles, '--role'))
    .option('--genesis-file <path>', 'genesis JSON for generated networks (a test net writes .testnet/genesis.json)')
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect)
    .option('--announce <multiaddr>', 'address to advertise to peers (repeatable)', collect)
    .option('--bootstrap <multiaddr>', 'bootstrap peer, /.../p2p/<peerId> (repeatable)', collect)
    .option('--rpc-port <port>', 'JSON-RPC port, HTTP and WebSocket (0 = any free port)', asArg(parsePort, '--rpc-port'))
    .option('--rpc-host <address>', 'JSON-RPC bind address (default 127.0.0.1)')
    .option('--metrics-port <port>', 'Prometheus metrics port (0 = any free port)', asArg(parsePort, '--metrics-port'))
    .option('--no-metrics', 'do not serve metrics')
    .option('--solana-rpc <url>', 'Solana JSON-RPC URL')
    .option('--program-id <address>', 'settlement program id (turns settlement on)')
    .addOption(new Option('--log-level <level>', 'log level').argParser(asArg(parseLogLevel, '--log-level')))
    .option('--specialization <taskId>', 'a task id this node runs (repeatable)', collect)
    .option('--task-slots <n>', 'tasks this node runs at once', asArg(parseCount, '--task-slots'))
    .option('--simulate-gpu <model:vram>', 'local networks only: advertise a GPU, e.g. A100:80GiB')
    .addOption(new Option('--byzantine <mode>', 'local networks only: misbehave on purpose (for tests and demos)').choices(['equivocate', 'wrong-output', 'lazy-copy', 'no-show']))
    .action(async (flags: RunFlags) => { await runDaemon(flags) })

  addLocationOptions(program.command('init').description('create a data dir with a new (or imported) identity and a commented config file'))
    .option('--import-key <file>', 'use an existing Solana keypair JSON file (e.g. from solana-keygen) as the identity')
    .option('--json', 'print the result as JSON')
    .action((flags: { network?: string, dataDir?: string, config?: string, importKey?: string, json?: boolean }) => {
      const { options } = resolveOptions({ flags: flagsToLayer(flags), env: process.env, ...(flags.config !== undefined ? { configPath: flags.config } : {}) })
      const imported = flags.importKey !== undefined ? parseKeypairJson(readFileSync(flags.importKey, 'utf8'), flags.importKey) : undefined
      if (imported !== undefined && existsSync(resolve(options.dataDir, 'identity.json'))) {
        throw new BitflowError('ERR_IDENTITY_EXISTS', `${options.dataDir} already has an identity; refusing to replace it with ${flags.importKey}`)
      }
      const { dataDir, createdIdentity } = DataDir.init(options.dataDir, options.network, imported)
      const identity = dataDir.loadIdentity()
      let wroteConfig = false
      if (!existsSync(dataDir.configPath)) {
        writeFileSync(dataDir.configPath, commentedConfig(options), { mode: 0o644 })
        wroteConfig = true
      }
      const result = { dataDir: dataDir.path, network: options.network, peerId: identity.peerId.toString(), solanaAddress: identity.solanaAddress, identity: dataDir.identityPath, config: dataDir.configPath, createdIdentity, wroteConfig }
      if (flags.json === true) { console.log(JSON.stringify(result, null, 2)); return }
      console.log(`${createdIdentity ? 'created' : 'kept existing'} identity ${result.identity}`)
      console.log(`  peer id:        ${result.peerId}`)
      console.log(`  solana address: ${result.solanaAddress}`)
      console.log(`${wroteConfig ? 'wrote' : 'kept existing'} config ${result.config}`)
    })

  const keys = program.command('keys').description('show the daemon identity (works offline, beside a running daemon)')
  addLocationOptions(keys.command('show').description('print the peer id and Solana address of a data dir'))
    .option('--json', 'print as JSON')
    .action((flags: { network?: string, dataDir?: string, config?: string, json?: boolean }) => {
      const { options } = resolveOptions({ flags: flagsToLayer(flags), env: process.env, ...(flags.config !== undefined ? { configPath: flags.config } : {}) })
      const identity = DataDir.open(options.dataDir).loadIdentity()
      const result = { peerId: identity.peerId.toString(), solanaAddress: identity.solanaAddress, publicKeyHex: Buffer.from(identity.publicKey).toString('hex'), identity: resolve(options.dataDir, 'identity.json') }
      if (flags.json === true) console.log(JSON.stringify(result, null, 2))
      else console.log(`peer id:        ${result.peerId}\nsolana address: ${result.solanaAddress}\nkey file:       ${result.identity}`)
    })

  const config = program.command('config').description('inspect configuration (offline)')
  addLocationOptions(config.command('show').description('print the effective options after layering, as JSON'))
    .option('--role <roles>', 'roles', asArg(parseRoles, '--role'))
    .action((flags: RunFlags) => {
      const { options, configPath } = resolveOptions({ flags: flagsToLayer(flags), env: process.env, ...(flags.config !== undefined ? { configPath: flags.config } : {}) })
      console.log(JSON.stringify({ ...options, ...(configPath !== undefined ? { configFile: configPath } : {}) }, null, 2))
    })

  registerTaskpackCommands(program)
  registerStakeCommands(program)
  registerAgentCommands(program)
  registerTensorCommands(program)
  registerModelCommands(program)
  registerDatasetCommands(program)
  registerExecCommands(program)
  return program
}

function exitOverrideAll (cmd: Command): void {
  cmd.exitOverride()
  for (const sub of cmd.commands) exitOverrideAll(sub)
}

export async function main (argv: string[]): Promise<void> {
  const program = buildCli()
  exitOverrideAll(program)
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0)
      // commander already printed its message naming the option
      process.stderr.write('run `bitflowd --help` for the options\n')
      process.exit(2)
    }
    if (err instanceof OptionError) {
      process.stderr.write(`error: ${err.message}\n`)
      process.exit(2)
    }
    if (err instanceof BitflowError) {
      process.stderr.write(`error [${err.code}]: ${err.message}\n`)
      process.exit(1)
    }
    process.stderr.write(`error: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(1)
  }
}

await main(process.argv)
