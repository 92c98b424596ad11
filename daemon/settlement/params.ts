import { BPS, PPM, type Params } from '../../programs/client/settlement.js'
import type { SettlementParams } from '../preset.js'

/** The network preset's settlement parameters in the program's fixed-point units. */
export function toProgramParams (s: SettlementParams): Params {
  return {
    minStake: BigInt(s.minStake),
    unbondingDelay: BigInt(s.unbondingDelaySecs),
    challengeDelay: BigInt(s.challengeDelaySecs),
    minFee: BigInt(s.minFee),
    samplingPpm: Math.round(s.samplingProbability * PPM),
    validatorRewardBps: Math.round(s.validatorRewardMultiple * BPS),
    slashBps: Math.round(s.slashFraction * BPS),
    bountyBps: Math.round(s.bountyShare * BPS),
    computeCostBps: Math.round(s.computeCost * BPS),
    collusionBps: Math.round(s.collusion * BPS),
    minStakeRatioBps: Math.round(s.minStakeRatio * BPS),
    seedDelaySlots: s.seedDelaySlots,
    deadlineBaseSecs: s.deadlineBaseSecs,
    deadlinePer100CuSecs: s.deadlinePer100CuSecs,
    unverifiablePayBps: Math.round(s.unverifiablePay * BPS)
  }
}
