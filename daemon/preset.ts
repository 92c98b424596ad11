import { readFileSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { Genesis } from '../protocols/genesis.js'
import { NetworkPresetError, OptionError } from './errors.js'
import { projectRoot } from './paths.js'

/** Protocol parameters of a network. Every daemon of a network must use the same values. */
export const NetworkParamsSchema = Type.Object({
  heartbeatIntervalMs: Type.Integer({ minimum: 100, description: 'how often nodes publish liveness heartbeats' }),
  roundIntervalMs: Type.Integer({ minimum: 500, description: 'length of a committee round' }),
  providerRecordTtlMs: Type.Integer({ minimum: 1000, description: 'how long a DHT provider record stays valid' })
}, { additionalProperties: false })

export type NetworkParams = Static<typeof NetworkParamsSchema>

/** Settlement parameters the network's on-chain config is initialized with (program units). */
export const SettlementParamsSchema = Type.Object({
  minStake: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'stake-mint base units' }),
  unbondingDelaySecs: Type.Integer({ minimum: 1, description: 'must exceed the challenge delay' }),
  challengeDelaySecs: Type.Integer({ minimum: 0 }),
  minFee: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'stake-mint base units per task' }),
  samplingProbability: Type.Number({ minimum: 0, maximum: 1, description: 'p' }),
  validatorRewardMultiple: Type.Number({ minimum: 1, description: 'R (1.2)' }),
  slashFraction: Type.Number({ minimum: 0, maximum: 1 }),
  bountyShare: Type.Number({ minimum: 0, maximum: 0.5, description: 'of a slash, to the proving validator' }),
  computeCost: Type.Number({ minimum: 0, description: 'C, in units of the task payment' }),
  collusion: Type.Number({ minimum: 0, maximum: 0.99, description: 'r, assumed colluding fraction' }),
  minStakeRatio: Type.Number({ minimum: 0, description: 'stake / payments in flight' }),
  seedDelaySlots: Type.Integer({ minimum: 1, maximum: 256, description: 'K' }),
  deadlineBaseSecs: Type.Integer({ minimum: 1 }),
  deadlinePer100CuSecs: Type.Integer({ minimum: 0 }),
  unverifiablePay: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'an unverifiable attempt (a dataset:// input no second validator holds) is paid this x the task price' })
}, { additionalProperties: false })
export type SettlementParams = Static<typeof SettlementParamsSchema>

export const NetworkPresetSchema = Type.Object({
  network: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }),
  description: Type.String(),
  /** local networks keep loopback/LAN addresses in the DHT and allow test-only features */
  local: Type.Boolean(),
  /** null: the genesis is generated (test nets) or not yet published (before launch) */
  genesis: Type.Union([Genesis, Type.Null()]),
  params: NetworkParamsSchema,
  settlement: SettlementParamsSchema,
  /** option defaults for this network, in config-file form */
  options: Type.Record(Type.String(), Type.Unknown())
}, { additionalProperties: false })

export type NetworkPreset = Static<typeof NetworkPresetSchema>

const ajv = new Ajv({ allErrors: false, strict: false })
const validatePreset = ajv.compile(NetworkPresetSchema)

export function presetDir (): string {
  return join(projectRoot(), 'bootstrap')
}

export function availableNetworks (): string[] {
  return readdirSync(presetDir()).filter(f => f.endsWith('.yaml')).map(f => f.slice(0, -5)).sort()
}

export function loadNetworkPreset (network: string): NetworkPreset {
  const file = join(presetDir(), `${network}.yaml`)
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(network) || !existsSync(file)) {
    throw new OptionError(`unknown network '${network}': expected one of ${availableNetworks().join(', ')}`)
  }
  const raw: unknown = parseYaml(readFileSync(file, 'utf8'))
  if (!validatePreset(raw)) {
    const e = validatePreset.errors?.[0]
    throw new NetworkPresetError(`network preset ${file} is invalid at '${e?.instancePath ?? ''}': ${e?.message ?? 'unknown error'}`)
  }
  if (raw.network !== network) throw new NetworkPresetError(`network preset ${file} declares network '${raw.network}'`)
  return raw
}
