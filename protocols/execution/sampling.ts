/**
 * The Proof of Sampling safety condition (DESIGN.md, issue 8):
 *
 *     p > C / ((1 − r)(R + S))
 *
 * p: sampling probability; C: compute cost of a task; r: fraction of validators assumed to collude;
 * R: validator reward; S: slash — C, R and S in units of the task payment. With S the stake that a
 * node must hold per payment in flight times the slashed fraction, cheating has a negative expected
 * value exactly when the condition holds. A daemon refuses to run a network whose parameters break
 * it (assertSafeParams), showing the numbers.
 *
 * The sampling decision itself is programs/client `isSampled` (the chain's rule); `samplingBounds`
 * gives the binomial bounds a sample of such decisions should stay within.
 */
import { ExecutionError } from './errors.js'

const PPM = 1_000_000
const BPS = 10_000

export interface SafetyInputs {
  /** p, sampling probability in [0, 1] */
  p: number
  /** C, compute cost per task payment */
  computeCost: number
  /** r, colluding fraction in [0, 1) */
  collusion: number
  /** R, validator reward per task payment */
  reward: number
  /** S, slash per task payment */
  slash: number
}

export interface SafetyCheck {
  safe: boolean
  p: number
  /** C / ((1 − r)(R + S)); Infinity when the denominator is 0 */
  threshold: number
  /** p − threshold: how much room there is (negative: unsafe) */
  margin: number
  inputs: SafetyInputs
  explanation: string
}

const num = (x: number): string => Number.isFinite(x) ? String(Number(x.toPrecision(6))) : String(x)

function explain (i: SafetyInputs, threshold: number, safe: boolean): string {
  const formula = `p > C / ((1 - r)(R + S)): ${num(i.p)} ${safe ? '>' : '<='} ${num(i.computeCost)} / ((1 - ${num(i.collusion)})(${num(i.reward)} + ${num(i.slash)})) = ${num(threshold)}`
  const tail = safe
    ? `safe, margin ${num(i.p - threshold)} (sampling ${num(i.p / threshold)}x the minimum)`
    : threshold === Infinity
      ? 'unsafe: with (1 - r)(R + S) = 0 no sampling rate deters cheating'
      : `unsafe by ${num(threshold - i.p)}: raise p above ${num(threshold)}, or raise the slash (minimum stake ratio) or the validator reward, or lower the assumed collusion`
  return `${formula}; ${tail} (C = compute cost, r = colluding fraction, R = validator reward, S = slash, in units of the task payment)`
}

function checkInputs (i: SafetyInputs): void {
  const bad = (what: string): never => { throw new ExecutionError('ERR_EXECUTION_BAD_PARAMS', what) }
  for (const [k, v] of Object.entries(i)) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(`${k} must be a finite non-negative number, got ${String(v)}`)
  if (i.p > 1) bad(`p must be at most 1, got ${i.p}`)
  if (i.collusion > 1) bad(`r must be at most 1, got ${i.collusion}`)
}

/** The condition over real numbers. */
export function safetyCondition (i: SafetyInputs): SafetyCheck {
  checkInputs(i)
  const denominator = (1 - i.collusion) * (i.reward + i.slash)
  const threshold = denominator === 0 ? Infinity : i.computeCost / denominator
  const safe = i.p > threshold
  return { safe, p: i.p, threshold, margin: i.p - threshold, inputs: { ...i }, explanation: explain(i, threshold, safe) }
}

/** The network parameters that enter the condition, in the program's fixed-point units (a programs/client `Params` fits). */
export interface SafetyParams {
  samplingPpm: number
  computeCostBps: number
  collusionBps: number
  validatorRewardBps: number
  slashBps: number
  minStakeRatioBps: number
}

/**
 * The condition from on-chain parameters, S = slash fraction × minimum stake ratio. The verdict is
 * computed in integers exactly as the settlement program checks it (so a daemon never accepts what
 * the program refuses, or the reverse); the numbers in the explanation are the same values as reals.
 */
export function safetyFromParams (params: SafetyParams): SafetyCheck {
  for (const [k, v] of Object.entries(params)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new ExecutionError('ERR_EXECUTION_BAD_PARAMS', `${k} must be a non-negative integer, got ${String(v)}`)
  }
  if (params.samplingPpm > PPM) throw new ExecutionError('ERR_EXECUTION_BAD_PARAMS', `samplingPpm must be at most ${PPM}`)
  if (params.collusionBps > BPS) throw new ExecutionError('ERR_EXECUTION_BAD_PARAMS', `collusionBps must be at most ${BPS}`)
  const slashUnits = BigInt(params.slashBps) * BigInt(params.minStakeRatioBps) / BigInt(BPS)
  const lhs = BigInt(params.samplingPpm) * BigInt(BPS - params.collusionBps) * (BigInt(params.validatorRewardBps) + slashUnits)
  const safe = lhs > BigInt(params.computeCostBps) * BigInt(PPM) * BigInt(BPS)
  const inputs: SafetyInputs = {
    p: params.samplingPpm / PPM,
    computeCost: params.computeCostBps / BPS,
    collusion: params.collusionBps / BPS,
    reward: params.validatorRewardBps / BPS,
    slash: Number(slashUnits) / BPS
  }
  const real = safetyCondition(inputs)
  return { ...real, safe, explanation: explain(inputs, real.threshold, safe) }
}

/** Throws ERR_EXECUTION_UNSAFE_PARAMS with the explanation when the parameters violate the condition. */
export function assertSafeParams (params: SafetyParams, network: string): SafetyCheck {
  const check = safetyFromParams(params)
  if (!check.safe) throw new ExecutionError('ERR_EXECUTION_UNSAFE_PARAMS', `refusing to run network '${network}': its parameters violate the Proof of Sampling safety condition: ${check.explanation}`)
  return check
}

/**
 * Normal-approximation bounds for the number of sampled tasks among n decisions at probability p:
 * expected ± z standard deviations (z = 4.5 leaves a false alarm about once in 150,000 runs).
 */
export function samplingBounds (n: number, p: number, z = 4.5): { expected: number, sd: number, low: number, high: number } {
  if (!Number.isSafeInteger(n) || n < 1 || !(p >= 0 && p <= 1) || !(z > 0)) throw new ExecutionError('ERR_EXECUTION_BAD_PARAMS', 'need n >= 1, 0 <= p <= 1, z > 0')
  const expected = n * p
  const sd = Math.sqrt(n * p * (1 - p))
  return { expected, sd, low: Math.max(0, Math.floor(expected - z * sd)), high: Math.min(n, Math.ceil(expected + z * sd)) }
}
