import { describe, it, expect } from 'vitest'
import { paramsAreSafe } from '../../../programs/client/index.js'
import { toProgramParams } from '../../../daemon/settlement/params.js'
import { safetyOf, presetSafety, UnsafeNetworkError } from '../../../daemon/services/settlement.js'
import { loadNetworkPreset } from '../../../daemon/preset.js'
import { taskKey } from '../../../protocols/execution/ids.js'

describe('network safety at daemon start', () => {
  it('every shipped preset is safe, and the float and integer checks agree', () => {
    for (const network of ['local', 'devnet', 'mainnet']) {
      const s = loadNetworkPreset(network).settlement
      const program = toProgramParams(s)
      expect(presetSafety(s).safe, network).toBe(true)
      expect(paramsAreSafe(program), network).toBe(true)
      expect(safetyOf(program).safe, network).toBe(true)
      // S = 10: C / ((1 - r)(R + S)) = 0.5 / (0.7 x 11.2)
      expect(presetSafety(s).threshold).toBeCloseTo(0.5 / (0.7 * 11.2), 6)
    }
  })

  it('refuses parameters that make cheating pay, showing the numbers', () => {
    const unsafe = { ...loadNetworkPreset('local').settlement, minStakeRatio: 1 }
    const check = presetSafety(unsafe)
    expect(check.safe).toBe(false)
    expect(paramsAreSafe(toProgramParams(unsafe))).toBe(false)
    const err = new UnsafeNetworkError(check, 'preset')
    expect(err.code).toBe('ERR_UNSAFE_NETWORK')
    expect(err.message).toMatch(/refusing to run.*0\.08 <= 0\.5 \/ \(\(1 - 0\.3\)\(1\.2 \+ 1\)\)/)
  })

  it('maps task ids to distinct 32-byte values', () => {
    expect(taskKey('a')).toHaveLength(32)
    expect(Buffer.from(taskKey('a')).equals(Buffer.from(taskKey('b')))).toBe(false)
  })
})
