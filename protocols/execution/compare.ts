/**
 * Tolerant comparison of a task's outputs with a re-execution (Proof of Sampling, issue 8).
 *
 * - The two results must hold the same tensor names; each pair must have the same dtype and shape.
 * - Integer and bool tensors must be equal element for element.
 * - Floating tensors pass when their mean absolute difference is at most
 *       tol = atol + rtol × mean(|reference|)
 *   with (atol, rtol) set by the dtype and the task's precision class: float16 and bfloat16 are
 *   looser than float32, float32 looser than float64; `high` is the strictest class, `low` the
 *   loosest. The relative term keeps the test meaningful for outputs of any magnitude.
 *   To stop an asserter from hiding a few large edits in a big tensor (which barely moves a mean),
 *   every element must also be within `ELEMENT_FACTOR` × (tol + rtol × |reference element|).
 *   NaNs must sit at the same positions; infinities must be equal.
 *
 * Pure and deterministic: sums are taken in float64 in index order.
 */
import { ExecutionError } from './errors.js'
import { DTYPE_BYTES, numel, tensorValues, type DecodedSafetensors, type DType, type Tensor } from '../tensor/safetensors.js'

export const PRECISION_CLASSES = ['high', 'standard', 'low'] as const
export type PrecisionClass = typeof PRECISION_CLASSES[number]

export type FloatDType = 'float16' | 'bfloat16' | 'float32' | 'float64'
export const isFloatDType = (d: DType): d is FloatDType => d === 'float16' || d === 'bfloat16' || d === 'float32' || d === 'float64'

export interface Tolerance {
  /** absolute part */
  atol: number
  /** relative part, times the mean |reference| */
  rtol: number
}

/**
 * Tolerances per dtype and precision class. Machine epsilons for scale: float64 2.2e-16, float32
 * 1.2e-7, float16 9.8e-4, bfloat16 7.8e-3; accumulations over long reductions in a different order
 * (another BLAS, another thread count) drift by a few hundred epsilons.
 */
export const TOLERANCES: Readonly<Record<FloatDType, Readonly<Record<PrecisionClass, Tolerance>>>> = {
  float64: { high: { atol: 1e-12, rtol: 1e-10 }, standard: { atol: 1e-9, rtol: 1e-7 }, low: { atol: 1e-6, rtol: 1e-4 } },
  float32: { high: { atol: 1e-7, rtol: 1e-6 }, standard: { atol: 1e-5, rtol: 1e-4 }, low: { atol: 1e-3, rtol: 1e-2 } },
  float16: { high: { atol: 1e-3, rtol: 2e-3 }, standard: { atol: 5e-3, rtol: 1e-2 }, low: { atol: 2e-2, rtol: 5e-2 } },
  bfloat16: { high: { atol: 8e-3, rtol: 1.6e-2 }, standard: { atol: 3e-2, rtol: 4e-2 }, low: { atol: 1e-1, rtol: 1e-1 } }
}

/** Per-element bound, as a multiple of the mean tolerance. */
export const ELEMENT_FACTOR = 100

export function toleranceFor (dtype: FloatDType, precision: PrecisionClass): Tolerance {
  const t = TOLERANCES[dtype]?.[precision]
  if (t === undefined) throw new ExecutionError('ERR_EXECUTION_BAD_TENSOR', `no tolerance for ${dtype} at precision ${precision}`)
  return t
}

export type MismatchKind = 'names' | 'dtype' | 'shape' | 'corrupt' | 'values' | 'nan' | 'element'

export interface TensorComparison {
  name: string
  match: boolean
  /** what differs, when not a match */
  kind?: MismatchKind
  /** human-readable verdict with the numbers */
  reason: string
  dtype?: DType
  shape?: number[]
  elements?: number
  /** floats: mean |a - b| over finite pairs */
  meanAbsDiff?: number
  maxAbsDiff?: number
  /** floats: the tolerance the mean was held to */
  tolerance?: number
  /** elements that differ (integers), or that break the per-element bound (floats) */
  differing?: number
  /** index of the first such element */
  firstDiffering?: number
}

export interface OutputComparison {
  match: boolean
  reason: string
  precision: PrecisionClass
  tensors: TensorComparison[]
}

const fmt = (x: number): string => x === 0 ? '0' : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e6 ? x.toPrecision(4) : x.toExponential(3)

/**
 * Compares one tensor of an asserted result (`a`) with the verifier's (`b`, the reference of the
 * relative tolerance). Symmetric in its verdict up to the relative term.
 */
export function compareTensors (name: string, a: Tensor, b: Tensor, precision: PrecisionClass): TensorComparison {
  if (!(PRECISION_CLASSES as readonly string[]).includes(precision)) throw new ExecutionError('ERR_EXECUTION_BAD_TENSOR', `unknown precision class '${String(precision)}'`)
  if (a.dtype !== b.dtype) return { name, match: false, kind: 'dtype', reason: `${name}: dtype ${a.dtype} vs ${b.dtype}` }
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    return { name, match: false, kind: 'shape', reason: `${name}: shape [${a.shape.join(', ')}] vs [${b.shape.join(', ')}]` }
  }
  const dtype = a.dtype
  const shape = [...a.shape]
  const n = numel(shape)
  for (const [which, t] of [['asserted', a], ['reference', b]] as const) {
    if (t.data.length !== n * DTYPE_BYTES[dtype]) {
      return { name, match: false, kind: 'corrupt', dtype, shape, reason: `${name}: ${which} data is ${t.data.length} bytes, [${shape.join(', ')}] ${dtype} needs ${n * DTYPE_BYTES[dtype]}` }
    }
  }
  if (!isFloatDType(dtype)) {
    const x = tensorValues(a)
    const y = tensorValues(b)
    let differing = 0
    let first = -1
    for (let i = 0; i < n; i++) {
      if (x[i] !== y[i]) {
        differing++
        if (first < 0) first = i
      }
    }
    if (differing === 0) return { name, match: true, dtype, shape, elements: n, differing: 0, reason: `${name}: ${n} ${dtype} elements equal` }
    return {
      name, match: false, kind: 'values', dtype, shape, elements: n, differing, firstDiffering: first,
      reason: `${name}: ${differing} of ${n} ${dtype} elements differ (first at index ${first}: ${String(x[first])} vs ${String(y[first])}); integers must match exactly`
    }
  }

  const tol = toleranceFor(dtype, precision)
  const x = tensorValues(a) as Float32Array | Float64Array
  const y = tensorValues(b) as Float32Array | Float64Array
  let sumAbsRef = 0
  let finite = 0
  for (let i = 0; i < n; i++) {
    const xi = x[i]!
    const yi = y[i]!
    const xn = Number.isNaN(xi)
    const yn = Number.isNaN(yi)
    if (xn || yn) {
      if (xn !== yn) return { name, match: false, kind: 'nan', dtype, shape, elements: n, firstDiffering: i, reason: `${name}: NaN at index ${i} in only one result (${fmt(xi)} vs ${fmt(yi)})` }
      continue
    }
    if (!Number.isFinite(xi) || !Number.isFinite(yi)) {
      if (xi !== yi) return { name, match: false, kind: 'nan', dtype, shape, elements: n, firstDiffering: i, reason: `${name}: infinity at index ${i} differs (${xi} vs ${yi})` }
      continue
    }
    sumAbsRef += Math.abs(yi)
    finite++
  }
  const meanRef = finite === 0 ? 0 : sumAbsRef / finite
  const tolerance = tol.atol + tol.rtol * meanRef
  let sumDiff = 0
  let maxAbsDiff = 0
  let differing = 0
  let first = -1
  for (let i = 0; i < n; i++) {
    const xi = x[i]!
    const yi = y[i]!
    if (!Number.isFinite(xi) || !Number.isFinite(yi)) continue
    const d = Math.abs(xi - yi)
    sumDiff += d
    if (d > maxAbsDiff) maxAbsDiff = d
    if (d > ELEMENT_FACTOR * (tolerance + tol.rtol * Math.abs(yi))) {
      differing++
      if (first < 0) first = i
    }
  }
  const meanAbsDiff = finite === 0 ? 0 : sumDiff / finite
  const base = { name, dtype, shape, elements: n, meanAbsDiff, maxAbsDiff, tolerance, differing }
  const numbers = `mean |diff| ${fmt(meanAbsDiff)} vs tolerance ${fmt(tolerance)} (${dtype}, ${precision}: atol ${fmt(tol.atol)} + rtol ${fmt(tol.rtol)} × mean |ref| ${fmt(meanRef)}), max |diff| ${fmt(maxAbsDiff)}`
  if (meanAbsDiff > tolerance) return { ...base, match: false, kind: 'values', reason: `${name}: ${numbers}: over tolerance` }
  if (differing > 0) {
    return { ...base, match: false, kind: 'element', firstDiffering: first, reason: `${name}: ${differing} element(s) beyond ${ELEMENT_FACTOR}× the element tolerance (first at index ${first}: ${fmt(x[first]!)} vs ${fmt(y[first]!)}); ${numbers}` }
  }
  return { ...base, match: true, reason: `${name}: ${numbers}: within tolerance` }
}

type Tensors = DecodedSafetensors | ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>

function asMap (t: Tensors): ReadonlyMap<string, Tensor> {
  if (t instanceof Map) return t
  if ('tensors' in t && (t as DecodedSafetensors).tensors instanceof Map) return (t as DecodedSafetensors).tensors
  return new Map(Object.entries(t as Record<string, Tensor>))
}

/**
 * Compares two decoded results tensor by tensor. A match needs the same tensor names and every
 * tensor to match; the reason names the first failure (or summarizes the match).
 */
export function compareOutputs (asserted: Tensors, reference: Tensors, precision: PrecisionClass): OutputComparison {
  const a = asMap(asserted)
  const b = asMap(reference)
  const onlyA = [...a.keys()].filter(k => !b.has(k)).sort()
  const onlyB = [...b.keys()].filter(k => !a.has(k)).sort()
  if (onlyA.length > 0 || onlyB.length > 0) {
    const parts = [
      ...(onlyA.length > 0 ? [`only in the asserted result: ${onlyA.join(', ')}`] : []),
      ...(onlyB.length > 0 ? [`only in the reference: ${onlyB.join(', ')}`] : [])
    ]
    return { match: false, precision, reason: `tensor names differ (${parts.join('; ')})`, tensors: [] }
  }
  const tensors = [...a.keys()].sort().map(name => compareTensors(name, a.get(name)!, b.get(name)!, precision))
  const failed = tensors.filter(t => !t.match)
  if (failed.length > 0) return { match: false, precision, tensors, reason: `${failed.length} of ${tensors.length} tensors differ; ${failed[0]!.reason}` }
  return { match: true, precision, tensors, reason: `all ${tensors.length} tensors match at precision ${precision}` }
}
