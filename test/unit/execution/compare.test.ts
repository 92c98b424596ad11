import { describe, it, expect } from 'vitest'
import { createTensor, decodeSafetensors, encodeSafetensors, type DType, type Tensor } from '../../../protocols/tensor/safetensors.js'
import { compareOutputs, compareTensors, toleranceFor, TOLERANCES, type PrecisionClass } from '../../../protocols/execution/compare.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'

/** deterministic pseudo-random values in [-1, 1) */
function values (n: number, seed: number): number[] {
  let s = seed >>> 0
  return Array.from({ length: n }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 31 - 1 })
}
/** honest float noise: each element moved by a relative ~eps */
const noisy = (xs: number[], rel: number, seed: number): number[] => { const r = values(xs.length, seed); return xs.map((x, i) => x * (1 + rel * r[i]!)) }
const t = (dtype: DType, shape: number[], xs: ArrayLike<number> | ArrayLike<bigint>): Tensor => createTensor(dtype, shape, xs)

describe('tensor comparison', () => {
  const xs = values(4096, 7).map(v => v * 10)

  it('accepts honest float noise within tolerance for every float dtype and class', () => {
    // noise of a few units in the last place of each dtype
    const noise: Record<string, number> = { float64: 1e-14, float32: 5e-7, float16: 1e-3, bfloat16: 8e-3 }
    for (const dtype of ['float64', 'float32', 'float16', 'bfloat16'] as const) {
      for (const p of ['high', 'standard', 'low'] as PrecisionClass[]) {
        const c = compareTensors('y', t(dtype, [64, 64], noisy(xs, noise[dtype]!, 3)), t(dtype, [64, 64], xs), p)
        expect(c.match, `${dtype}/${p}: ${c.reason}`).toBe(true)
        expect(c.reason).toMatch(/within tolerance/)
      }
    }
  })

  it('rejects a wrong result far beyond tolerance, with the numbers in the reason', () => {
    const wrong = xs.map(x => x + 0.05)
    const c = compareTensors('y', t('float32', [4096], wrong), t('float32', [4096], xs), 'standard')
    expect(c.match).toBe(false)
    expect(c.kind).toBe('values')
    expect(c.meanAbsDiff).toBeCloseTo(0.05, 4)
    expect(c.reason).toMatch(/mean \|diff\| 0\.05\d* vs tolerance .* over tolerance/)
  })

  it('is looser for half precision than for float32, and for low than for high', () => {
    for (const p of ['high', 'standard', 'low'] as const) {
      expect(TOLERANCES.float16[p].atol).toBeGreaterThan(TOLERANCES.float32[p].atol)
      expect(TOLERANCES.bfloat16[p].rtol).toBeGreaterThan(TOLERANCES.float32[p].rtol)
      expect(TOLERANCES.float32[p].rtol).toBeGreaterThan(TOLERANCES.float64[p].rtol)
    }
    // the same perturbation passes in float16 and fails in float32
    const pert = noisy(xs, 2e-3, 9)
    expect(compareTensors('y', t('float16', [4096], pert), t('float16', [4096], xs), 'standard').match).toBe(true)
    expect(compareTensors('y', t('float32', [4096], pert), t('float32', [4096], xs), 'standard').match).toBe(false)
    // and a perturbation between the classes passes low, fails high
    const mid = noisy(xs, 2e-5, 11)
    expect(compareTensors('y', t('float32', [4096], mid), t('float32', [4096], xs), 'low').match).toBe(true)
    expect(compareTensors('y', t('float32', [4096], mid), t('float32', [4096], xs), 'high').match).toBe(false)
  })

  it('scales the tolerance with the magnitude of the outputs', () => {
    const big = xs.map(x => x * 1e4)
    expect(compareTensors('y', t('float32', [4096], noisy(big, 5e-7, 5)), t('float32', [4096], big), 'high').match).toBe(true)
  })

  it('catches a few large edits hidden in a big tensor', () => {
    const n = 1 << 16
    const base = values(n, 1)
    const edited = [...base]
    edited[12345] = base[12345]! + 0.5 // barely moves the mean: 0.5/65536 ≈ 7.6e-6, under the 6e-5 tolerance
    const c = compareTensors('y', t('float32', [n], edited), t('float32', [n], base), 'standard')
    expect(c.meanAbsDiff!).toBeLessThan(c.tolerance!)
    expect(c.match).toBe(false)
    expect(c.kind).toBe('element')
    expect(c.firstDiffering).toBe(12345)
  })

  it('fails on a shape mismatch always, even with the same elements and the loosest class', () => {
    for (const dtype of ['float32', 'bfloat16', 'int32', 'bool'] as const) {
      const vals = dtype === 'bool' ? [1, 0, 1, 0, 1, 0] : [1, 2, 3, 4, 5, 6]
      const c = compareTensors('y', t(dtype, [2, 3], vals), t(dtype, [3, 2], vals), 'low')
      expect(c).toMatchObject({ match: false, kind: 'shape', reason: 'y: shape [2, 3] vs [3, 2]' })
      expect(compareTensors('y', t(dtype, [6], vals), t(dtype, [1, 6], vals), 'low').match).toBe(false)
      expect(compareTensors('y', t(dtype, [6], vals), t(dtype, [6, 1], vals), 'low')).toMatchObject({ match: false, kind: 'shape' })
    }
  })

  it('fails on a dtype mismatch', () => {
    const c = compareTensors('y', t('float32', [2], [1, 2]), t('float64', [2], [1, 2]), 'low')
    expect(c).toMatchObject({ match: false, kind: 'dtype' })
  })

  it('compares integers and bools exactly', () => {
    expect(compareTensors('i', t('int32', [3], [1, 2, 3]), t('int32', [3], [1, 2, 3]), 'low').match).toBe(true)
    const c = compareTensors('i', t('int32', [3], [1, 2, 4]), t('int32', [3], [1, 2, 3]), 'low')
    expect(c).toMatchObject({ match: false, kind: 'values', differing: 1, firstDiffering: 2 })
    expect(c.reason).toMatch(/1 of 3 int32 elements differ \(first at index 2: 4 vs 3\)/)
    expect(compareTensors('b', t('bool', [2], [1, 0]), t('bool', [2], [1, 1]), 'low').match).toBe(false)
    expect(compareTensors('l', t('int64', [2], [1n, 2n ** 60n]), t('int64', [2], [1n, 2n ** 60n + 1n]), 'low').match).toBe(false)
    expect(compareTensors('u', t('uint8', [2], [7, 9]), t('uint8', [2], [7, 9]), 'low').match).toBe(true)
  })

  it('requires NaNs in the same places and equal infinities', () => {
    expect(compareTensors('n', t('float32', [3], [NaN, 1, Infinity]), t('float32', [3], [NaN, 1, Infinity]), 'high').match).toBe(true)
    expect(compareTensors('n', t('float32', [2], [NaN, 1]), t('float32', [2], [0, 1]), 'low')).toMatchObject({ match: false, kind: 'nan' })
    expect(compareTensors('n', t('float32', [2], [-Infinity, 1]), t('float32', [2], [Infinity, 1]), 'low')).toMatchObject({ match: false, kind: 'nan' })
  })

  it('treats corrupt data as a mismatch, and accepts empty tensors', () => {
    const good = t('float32', [2], [1, 2])
    expect(compareTensors('c', { ...good, data: good.data.subarray(0, 4) }, good, 'low')).toMatchObject({ match: false, kind: 'corrupt' })
    expect(compareTensors('e', t('float32', [0, 3], []), t('float32', [0, 3], []), 'high').match).toBe(true)
  })

  it('compares decoded safetensors files: names must agree and every tensor match', () => {
    const ref = decodeSafetensors(encodeSafetensors({ y: t('float32', [4096], xs), idx: t('int64', [2], [3n, 4n]) }))
    const honest = decodeSafetensors(encodeSafetensors({ y: t('float32', [4096], noisy(xs, 5e-7, 2)), idx: t('int64', [2], [3n, 4n]) }))
    const ok = compareOutputs(honest, ref, 'standard')
    expect(ok.match).toBe(true)
    expect(ok.reason).toBe('all 2 tensors match at precision standard')
    const extra = compareOutputs({ ...Object.fromEntries(honest.tensors), z: t('int8', [1], [1]) }, ref, 'standard')
    expect(extra).toMatchObject({ match: false, reason: 'tensor names differ (only in the asserted result: z)' })
    const wrongIdx = compareOutputs(new Map([['y', honest.tensors.get('y')!], ['idx', t('int64', [2], [3n, 5n])]]), ref, 'standard')
    expect(wrongIdx.match).toBe(false)
    expect(wrongIdx.reason).toMatch(/^1 of 2 tensors differ; idx: 1 of 2 int64 elements differ/)
  })

  it('throws a coded error for an unknown precision class', () => {
    expect(() => compareTensors('y', t('float32', [1], [1]), t('float32', [1], [1]), 'medium' as never)).toThrow(ExecutionError)
    expect(toleranceFor('float32', 'standard')).toEqual({ atol: 1e-5, rtol: 1e-4 })
  })
})
