import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument, isMap, isSeq, type Document, LineCounter } from 'yaml'
import { OptionError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './logger.js'
import { loadNetworkPreset, type NetworkPreset } from './preset.js'

export const ROLES = ['oracle', 'node', 'validator'] as const
export type Role = typeof ROLES[number]

/** The full option set, after layering. Each field documents itself for the config reference. */
export const DaemonOptionsSchema = Type.Object({
  roles: Type.Array(Type.Union(ROLES.map(r => Type.Literal(r))), { minItems: 1, uniqueItems: true, description: 'roles this daemon runs: oracle, node, validator' }),
  network: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$', description: 'network preset from bootstrap/: local, devnet, mainnet' }),
  dataDir: Type.String({ minLength: 1, description: 'data directory (identity, lock, stores); default ~/.bitflow/<network>' }),
  genesisFile: Type.Optional(Type.String({ minLength: 1, description: 'genesis JSON for networks whose genesis is generated (local test nets)' })),
  listen: Type.Array(Type.String({ pattern: '^/' }), { description: 'libp2p listen multiaddrs' }),
  announce: Type.Array(Type.String({ pattern: '^/' }), { description: 'multiaddrs to advertise instead of the listen addresses' }),
  bootstrap: Type.Array(Type.String({ pattern: '^/' }), { description: 'bootstrap peer multiaddrs (with /p2p/<peerId>)' }),
  rpc: Type.Object({
    host: Type.String({ description: 'JSON-RPC bind address (loopback by default)' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'JSON-RPC port (HTTP and WebSocket); 0 picks a free port' }),
    allowedHosts: Type.Array(Type.String(), { description: 'extra Host header values accepted (loopback names are always accepted)' }),
    allowedOrigins: Type.Array(Type.String(), { description: 'browser Origins allowed to call the API' }),
    maxRequestBytes: Type.Integer({ minimum: 1024, description: 'largest HTTP body or WebSocket frame accepted' }),
    maxBatchSize: Type.Integer({ minimum: 1, description: 'largest JSON-RPC batch accepted' })
  }, { additionalProperties: false }),
  metrics: Type.Object({
    enabled: Type.Boolean({ description: 'serve Prometheus metrics' }),
    host: Type.String({ description: 'metrics bind address' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'metrics port; 0 picks a free port' })
  }, { additionalProperties: false }),
  solanaRpc: Type.String({ description: 'Solana JSON-RPC URL used for settlement' }),
  programId: Type.Optional(Type.String({ pattern: '^[1-9A-HJ-NP-Za-km-z]{32,44}$', description: 'the settlement program id; without it settlement is off and admission comes from the genesis only' })),
  logLevel: Type.Union(LOG_LEVELS.map(l => Type.Literal(l)), { description: 'log level' }),
  node: Type.Object({
    specializations: Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:/@-]+$' }), { maxItems: 64, uniqueItems: true, description: 'task ids this node (or validator) runs; advertised in heartbeats and the DHT' }),
    taskSlots: Type.Integer({ minimum: 0, maximum: 4096, description: 'tasks this node runs at once' }),
    simulateGpu: Type.Optional(Type.String({ pattern: '^[^:]{1,128}:[0-9]+(\\.[0-9]+)?([KMGT]i?B?)?$', description: 'local networks only: advertise a GPU, MODEL:VRAM (e.g. A100:80GiB), to exercise GPU paths without one' }))
  }, { additionalProperties: false }),
  byzantine: Type.Optional(Type.Union([Type.Literal('equivocate'), Type.Literal('wrong-output'), Type.Literal('lazy-copy'), Type.Literal('no-show')], { description: 'local networks only: misbehave on purpose so tests and demos can watch the protocol catch it' })),
  publishers: Type.Optional(Type.Object({
    allow: Type.Array(Type.String({ pattern: '^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$' }), { maxItems: 1024, uniqueItems: true, description: 'taskpack publishers (peer ids) this node trusts: resolve prefers them when several publishers use a name' })
  }, { additionalProperties: false })),
  connections: Type.Object({
    maxConnections: Type.Integer({ minimum: 1, description: 'most open libp2p connections' }),
    maxInboundPerSecondPerIp: Type.Integer({ minimum: 1, description: 'inbound connection rate per remote IP (loopback test nets share one IP)' }),
    allowList: Type.Array(Type.String(), { description: 'multiaddr prefixes exempt from connection limits' })
  }, { additionalProperties: false })
}, { additionalProperties: false })

export type DaemonOptions = Static<typeof DaemonOptionsSchema>

/** A layer: any subset of the options. */
export type PartialOptions = { [K in keyof DaemonOptions]?: DaemonOptions[K] extends unknown[] ? DaemonOptions[K] : DaemonOptions[K] extends object ? Partial<DaemonOptions[K]> : DaemonOptions[K] }

export const DEFAULT_RPC_PORT = 8645
export const DEFAULT_METRICS_PORT = 9645

export function defaultOptions (): Omit<DaemonOptions, 'dataDir' | 'network'> {
  return {
    roles: ['node'],
    listen: ['/ip4/0.0.0.0/tcp/4645'],
    announce: [],
    bootstrap: [],
    rpc: { host: '127.0.0.1', port: DEFAULT_RPC_PORT, allowedHosts: [], allowedOrigins: [], maxRequestBytes: 1024 * 1024, maxBatchSize: 50 },
    metrics: { enabled: true, host: '127.0.0.1', port: DEFAULT_METRICS_PORT },
    solanaRpc: 'http://127.0.0.1:8899',
    logLevel: 'info',
    node: { specializations: [], taskSlots: 1 },
    connections: { maxConnections: 300, maxInboundPerSecondPerIp: 5, allowList: [] }
  }
}

export function defaultDataDir (network: string): string {
  return join(process.env.HOME ?? homedir(), '.bitflow', network)
}

const ajv = new Ajv({ allErrors: true, strict: false })
const validateFull = ajv.compile(DaemonOptionsSchema)
const LayerSchema = deepPartial(DaemonOptionsSchema)
const validateLayer = ajv.compile(LayerSchema)

function deepPartial (schema: TSchema): TSchema {
  if (schema.type === 'object' && schema.properties !== undefined) {
    const props: Record<string, TSchema> = {}
    for (const [k, v] of Object.entries(schema.properties as Record<string, TSchema>)) props[k] = Type.Optional(deepPartial(v))
    return Type.Object(props, { additionalProperties: false })
  }
  return schema
}

function describeAjvError (e: ErrorObject, where: string): string {
  const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.')
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty
    return `unknown option '${path === '' ? extra : `${path}.${extra}`}' in ${where}`
  }
  if (e.keyword === 'enum' || e.keyword === 'const' || e.keyword === 'anyOf') {
    return `invalid value for option '${path}' in ${where}`
  }
  return `invalid value for option '${path}' in ${where}: ${e.message ?? 'invalid'}`
}

/** Validates one layer (config file, env, flags): unknown keys and wrong types are named. */
export function checkLayer (layer: unknown, where: string): PartialOptions {
  if (!validateLayer(layer)) {
    const errors = validateLayer.errors ?? []
    // anyOf failures (roles, logLevel) produce one error per branch; report the first useful one
    const first = errors.find(e => e.keyword === 'additionalProperties') ?? errors[0]
    throw new OptionError(first !== undefined ? describeAjvError(first, where) : `invalid options in ${where}`)
  }
  return layer as PartialOptions
}

function mergeLayer (base: Record<string, unknown>, layer: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(layer)) {
    if (v === undefined) continue
    const current = out[k]
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && current !== null && typeof current === 'object' && !Array.isArray(current)) {
      out[k] = mergeLayer(current as Record<string, unknown>, v as Record<string, unknown>)
    } else {
      out[k] = v
    }
  }
  return out
}

// ---- config file (YAML) ----

export interface ConfigFile { path: string, options: PartialOptions }

export function readConfigFile (path: string): ConfigFile {
  const abs = resolve(path)
  let text: string
  try {
    text = readFileSync(abs, 'utf8')
  } catch (err) {
    throw new OptionError(`cannot read config file ${abs}: ${(err as Error).message}`)
  }
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    throw new OptionError(`config file ${abs} is not valid YAML: ${e.message.split('\n')[0]}`)
  }
  const raw = doc.toJS() ?? {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new OptionError(`config file ${abs} must be a YAML mapping of options`)
  try {
    const options = checkLayer(raw, `config file ${abs}`)
    // relative paths in a config file are relative to the file
    if (options.dataDir !== undefined) options.dataDir = resolve(dirname(abs), options.dataDir)
    if (options.genesisFile !== undefined) options.genesisFile = resolve(dirname(abs), options.genesisFile)
    return { path: abs, options }
  } catch (err) {
    if (err instanceof OptionError) {
      const line = lineOfKey(doc, lineCounter, err.message)
      throw new OptionError(line !== undefined ? `${err.message} (line ${line})` : err.message)
    }
    throw err
  }
}

function lineOfKey (doc: Document, lc: LineCounter, message: string): number | undefined {
  const m = /option '([^']+)'/.exec(message)
  if (m === null) return undefined
  let node: unknown = doc.contents
  let line: number | undefined
  for (const part of m[1]!.split('.')) {
    if (!isMap(node)) break
    const pair = node.items.find(p => (p.key as { value?: unknown })?.value === part)
    if (pair === undefined) break
    const range = (pair.key as { range?: [number, number, number] }).range
    if (range !== undefined) line = lc.linePos(range[0]).line
    node = pair.value
  }
  if (isSeq(node)) return line
  return line
}

// ---- environment ----

type EnvSpec = { key: string, parse: (v: string) => PartialOptions }

const list = (v: string): string[] => v.split(',').map(s => s.trim()).filter(s => s !== '')

export function parsePort (value: string, name: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new OptionError(`invalid value '${value}' for ${name}: expected a port number 0-65535`)
  return Number(value)
}

export function parseCount (value: string, name: string): number {
  if (!/^\d+$/.test(value)) throw new OptionError(`invalid value '${value}' for ${name}: expected a whole number`)
  return Number(value)
}

export function parseRoles (value: string, name: string): Role[] {
  const roles = list(value)
  if (roles.length === 0) throw new OptionError(`${name} needs at least one role: oracle, node or validator`)
  for (const r of roles) {
    if (!(ROLES as readonly string[]).includes(r)) throw new OptionError(`invalid role '${r}' in ${name}: expected oracle, node or validator (comma-separated for several)`)
  }
  return [...new Set(roles)] as Role[]
}

export function parseLogLevel (value: string, name: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new OptionError(`invalid value '${value}' for ${name}: expected one of ${LOG_LEVELS.join(', ')}`)
  return value as LogLevel
}

const ENV: Record<string, EnvSpec['parse']> = {
  BITFLOW_ROLE: v => ({ roles: parseRoles(v, 'BITFLOW_ROLE') }),
  BITFLOW_NETWORK: v => ({ network: v }),
  BITFLOW_DATA_DIR: v => ({ dataDir: resolve(v) }),
  BITFLOW_GENESIS_FILE: v => ({ genesisFile: resolve(v) }),
  BITFLOW_LISTEN: v => ({ listen: list(v) }),
  BITFLOW_ANNOUNCE: v => ({ announce: list(v) }),
  BITFLOW_BOOTSTRAP: v => ({ bootstrap: list(v) }),
  BITFLOW_RPC_HOST: v => ({ rpc: { host: v } }),
  BITFLOW_RPC_PORT: v => ({ rpc: { port: parsePort(v, 'BITFLOW_RPC_PORT') } }),
  BITFLOW_METRICS_PORT: v => ({ metrics: { port: parsePort(v, 'BITFLOW_METRICS_PORT') } }),
  BITFLOW_SOLANA_RPC: v => ({ solanaRpc: v }),
  BITFLOW_PROGRAM_ID: v => ({ programId: v }),
  BITFLOW_LOG_LEVEL: v => ({ logLevel: parseLogLevel(v, 'BITFLOW_LOG_LEVEL') }),
  BITFLOW_SPECIALIZATIONS: v => ({ node: { specializations: list(v) } })
}
/** Environment variables read elsewhere (not options), so they are not reported as unknown. */
const ENV_NOT_OPTIONS = new Set(['BITFLOW_CONFIG', 'BITFLOW_RPC_TOKEN', 'BITFLOW_RPC_URL'])

export const ENV_VARIABLES = Object.keys(ENV)

export function optionsFromEnv (env: NodeJS.ProcessEnv): PartialOptions {
  let out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('BITFLOW_') || value === undefined) continue
    const parse = ENV[key]
    if (parse === undefined) {
      if (ENV_NOT_OPTIONS.has(key)) continue
      throw new OptionError(`unknown environment variable ${key}; known: ${[...ENV_VARIABLES, ...ENV_NOT_OPTIONS].join(', ')}`)
    }
    out = mergeLayer(out, parse(value) as Record<string, unknown>)
  }
  return checkLayer(out, 'the environment')
}

// ---- layering ----

export interface LayerInputs {
  flags: PartialOptions
  env: NodeJS.ProcessEnv
  /** config file path from --config or BITFLOW_CONFIG */
  configPath?: string
}

export interface ResolvedOptions {
  options: DaemonOptions
  preset: NetworkPreset
  configPath?: string
}

/** defaults <- network preset <- config file <- env <- flags */
export function resolveOptions (inputs: LayerInputs): ResolvedOptions {
  const envLayer = optionsFromEnv(inputs.env)
  const configPath = inputs.configPath ?? inputs.env.BITFLOW_CONFIG
  const config = configPath !== undefined ? readConfigFile(configPath) : undefined
  // the network decides which preset is layered in, so find it first from the higher layers
  const network = inputs.flags.network ?? envLayer.network ?? config?.options.network ?? 'local'
  const preset = loadNetworkPreset(network)
  let merged: Record<string, unknown> = { ...defaultOptions(), network }
  merged = mergeLayer(merged, checkLayer(preset.options, `network preset bootstrap/${network}.yaml`) as Record<string, unknown>)
  if (config !== undefined) merged = mergeLayer(merged, config.options as Record<string, unknown>)
  merged = mergeLayer(merged, envLayer as Record<string, unknown>)
  merged = mergeLayer(merged, inputs.flags as Record<string, unknown>)
  if (merged.dataDir === undefined) merged.dataDir = defaultDataDir(network)
  if (!validateFull(merged)) {
    const e = validateFull.errors?.[0]
    throw new OptionError(e !== undefined ? describeAjvError(e, 'the merged options') : 'invalid options')
  }
  const options = merged as DaemonOptions
  options.dataDir = resolve(options.dataDir)
  if (!preset.local) {
    if (options.node.simulateGpu !== undefined) throw new OptionError(`--simulate-gpu is for local networks only; network '${network}' is not local`)
    if (options.byzantine !== undefined) throw new OptionError(`--byzantine is for local networks only; network '${network}' is not local`)
  }
  return { options, preset, ...(config !== undefined ? { configPath: config.path } : {}) }
}
