import { canonicalJson } from '../canonical.js'

/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {...}}`),
 * then the tensor bytes, little-endian, offsets relative to the end of the header. Readable by
 * numpy/PyTorch users without BitFlow.
 */

export const DTYPES = ['float16', 'bfloat16', 'float32', 'float64', 'int8', 'uint8', 'int16', 'int32', 'int64', 'bool'] as const
export type DType = typeof DTYPES[number]

const WIRE: Record<DType, string> = {
  float16: 'F16', bfloat16: 'BF16', float32: 'F32', float64: 'F64', int8: 'I8', uint8: 'U8', int16: 'I16', int32: 'I32', int64: 'I64', bool: 'BOOL'
}
const FROM_WIRE: Record<string, DType> = Object.fromEntries(Object.entries(WIRE).map(([k, v]) => [v, k as DType]))

export const DTYPE_BYTES: Record<DType, number> = {
  float16: 2, bfloat16: 2, float32: 4, float64: 8, int8: 1, uint8: 1, int16: 2, int32: 4, int64: 8, bool: 1
}

export function isDType (v: unknown): v is DType {
  return typeof v === 'string' && (DTYPES as readonly string[]).includes(v)
}

export const METADATA_KEY = '__metadata__'
/** Largest header accepted (the reference implementation caps it at 100 MB; headers are metadata). */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024 * 1024
export const MAX_RANK = 32

export class SafetensorsError extends Error {
  readonly code = 'ERR_SAFETENSORS'
  constructor (message: string) {
    super(message)
    this.name = 'SafetensorsError'
  }
}

export interface Tensor {
  dtype: DType
  shape: number[]
  /** raw little-endian element bytes, numel × itemsize long */
  data: Uint8Array
}

export function numel (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

function checkShape (shape: unknown, where: string): number[] {
  if (!Array.isArray(shape)) throw new SafetensorsError(`${where}: shape must be a list of non-negative integers`)
  if (shape.length > MAX_RANK) throw new SafetensorsError(`${where}: rank ${shape.length} exceeds ${MAX_RANK}`)
  let n = 1
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new SafetensorsError(`${where}: shape must be a list of non-negative integers (got ${JSON.stringify(shape)})`)
    n *= d
    if (!Number.isSafeInteger(n)) throw new SafetensorsError(`${where}: shape ${JSON.stringify(shape)} has too many elements`)
  }
  return shape as number[]
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

type Values = ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>

/**
 * Builds a tensor from values. Floats are rounded to the dtype (round to nearest even for float16
 * and bfloat16); integers must fit the dtype; int64 takes bigints or safe integers.
 */
export function createTensor (dtype: DType, shape: readonly number[], values: Values): Tensor {
  const s = checkShape([...shape], 'tensor')
  const n = numel(s)
  if (values.length !== n) throw new SafetensorsError(`tensor of shape [${s.join(', ')}] needs ${n} values, got ${values.length}`)
  const data = new Uint8Array(n * DTYPE_BYTES[dtype])
  const view = new DataView(data.buffer)
  const num = (i: number): number => {
    const v = values[i]
    if (typeof v === 'number') return v
    if (typeof v === 'boolean') return v ? 1 : 0
    if (typeof v === 'bigint') return Number(v)
    throw new SafetensorsError(`value ${i} is not a number`)
  }
  const int = (i: number, min: number, max: number): number => {
    const v = num(i)
    if (!Number.isInteger(v) || v < min || v > max) throw new SafetensorsError(`value ${i} (${v}) does not fit ${dtype}`)
    return v
  }
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'float16': view.setUint16(i * 2, float32ToFloat16Bits(num(i)), true); break
      case 'bfloat16': view.setUint16(i * 2, float32ToBfloat16Bits(num(i)), true); break
      case 'float32': view.setFloat32(i * 4, num(i), true); break
      case 'float64': view.setFloat64(i * 8, num(i), true); break
      case 'int8': view.setInt8(i, int(i, -128, 127)); break
      case 'uint8': view.setUint8(i, int(i, 0, 255)); break
      case 'int16': view.setInt16(i * 2, int(i, -32768, 32767), true); break
      case 'int32': view.setInt32(i * 4, int(i, -(2 ** 31), 2 ** 31 - 1), true); break
      case 'int64': {
        const v = values[i]
        let b: bigint
        if (typeof v === 'bigint') b = v
        else {
          const x = num(i)
          if (!Number.isSafeInteger(x)) throw new SafetensorsError(`value ${i} (${x}) is not a safe integer; pass a bigint for int64`)
          b = BigInt(x)
        }
        if (b < -(2n ** 63n) || b >= 2n ** 63n) throw new SafetensorsError(`value ${i} does not fit int64`)
        view.setBigInt64(i * 8, b, true)
        break
      }
      case 'bool': {
        const v = num(i)
        if (v !== 0 && v !== 1) throw new SafetensorsError(`value ${i} (${v}) is not a boolean`)
        view.setUint8(i, v)
        break
      }
    }
  }
  return { dtype, shape: s, data }
}

export type TensorValues = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Int32Array | BigInt64Array

/**
 * The elements as a typed array (a copy): float16/bfloat16/float32 -> Float32Array, float64 ->
 * Float64Array, int64 -> BigInt64Array, bool -> Uint8Array of 0/1, other integers their own type.
 */
export function tensorValues (t: Tensor): TensorValues {
  const n = numel(t.shape)
  if (t.data.length !== n * DTYPE_BYTES[t.dtype]) throw new SafetensorsError(`tensor data is ${t.data.length} bytes, shape and dtype need ${n * DTYPE_BYTES[t.dtype]}`)
  // a real copy at offset 0 of its own buffer (Buffer#slice would share memory, and the view may be unaligned)
  const bytes = new Uint8Array(t.data)
  if (LITTLE_ENDIAN) {
    switch (t.dtype) {
      case 'float16': return float16ToFloat32(new Uint16Array(bytes.buffer, 0, n))
      case 'bfloat16': return bfloat16ToFloat32(new Uint16Array(bytes.buffer, 0, n))
      case 'float32': return new Float32Array(bytes.buffer, 0, n)
      case 'float64': return new Float64Array(bytes.buffer, 0, n)
      case 'int8': return new Int8Array(bytes.buffer, 0, n)
      case 'uint8': case 'bool': return bytes
      case 'int16': return new Int16Array(bytes.buffer, 0, n)
      case 'int32': return new Int32Array(bytes.buffer, 0, n)
      case 'int64': return new BigInt64Array(bytes.buffer, 0, n)
    }
  }
  const view = new DataView(bytes.buffer)
  const fill = <A extends { [i: number]: number | bigint }>(arr: A, get: (i: number) => number | bigint): A => { for (let i = 0; i < n; i++) arr[i] = get(i); return arr }
  switch (t.dtype) {
    case 'float16': return fill(new Float32Array(n), i => float16BitsToFloat32(view.getUint16(i * 2, true)))
    case 'bfloat16': return fill(new Float32Array(n), i => bfloat16BitsToFloat32(view.getUint16(i * 2, true)))
    case 'float32': return fill(new Float32Array(n), i => view.getFloat32(i * 4, true))
    case 'float64': return fill(new Float64Array(n), i => view.getFloat64(i * 8, true))
    case 'int8': return new Int8Array(bytes.buffer, 0, n)
    case 'uint8': case 'bool': return bytes
    case 'int16': return fill(new Int16Array(n), i => view.getInt16(i * 2, true))
    case 'int32': return fill(new Int32Array(n), i => view.getInt32(i * 4, true))
    case 'int64': return fill(new BigInt64Array(n), i => view.getBigInt64(i * 8, true))
  }
}

export type TensorMap = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>

/**
 * Encodes tensors to safetensors bytes. Deterministic: header keys sorted, data laid out in name
 * order, the header padded with spaces so the data starts 8-byte aligned.
 */
export function encodeSafetensors (tensors: TensorMap, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)) as Array<[string, Tensor]>
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const header: Record<string, unknown> = {}
  let offset = 0
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw new SafetensorsError(`'${METADATA_KEY}' is reserved and cannot name a tensor`)
    if (!isDType(t.dtype)) throw new SafetensorsError(`tensor '${name}': unsupported dtype ${String(t.dtype)}`)
    const shape = checkShape(t.shape, `tensor '${name}'`)
    const size = numel(shape) * DTYPE_BYTES[t.dtype]
    if (t.data.length !== size) throw new SafetensorsError(`tensor '${name}': data is ${t.data.length} bytes, shape [${shape.join(', ')}] of ${t.dtype} needs ${size}`)
    header[name] = { dtype: WIRE[t.dtype], shape, data_offsets: [offset, offset + size] }
    offset += size
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new SafetensorsError(`metadata '${k}' must be a string`)
    header[METADATA_KEY] = metadata
  }
  let json = new TextEncoder().encode(canonicalJson(header))
  const padded = Math.ceil(json.length / 8) * 8
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20)
    p.set(json)
    json = p
  }
  const out = new Uint8Array(8 + json.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  let pos = 8 + json.length
  for (const [, t] of entries) { out.set(t.data, pos); pos += t.data.length }
  return out
}

export interface DecodedSafetensors {
  tensors: Map<string, Tensor>
  metadata?: Record<string, string>
}

export interface DecodeOptions {
  maxHeaderBytes?: number
  /** copy tensor data out of the input (default: views into it) */
  copy?: boolean
}

/**
 * Decodes untrusted safetensors bytes. Rejects: a header length beyond the cap or the input, a header
 * that is not a UTF-8 JSON object, unknown dtypes, bad shapes, offsets whose size disagrees with shape
 * × dtype, overlapping tensors, holes or trailing bytes in the data.
 */
export function decodeSafetensors (bytes: Uint8Array, options: DecodeOptions = {}): DecodedSafetensors {
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
  if (bytes.length < 8) throw new SafetensorsError(`file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`)
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true)
  if (n > BigInt(maxHeader)) throw new SafetensorsError(`header length ${n} exceeds the limit of ${maxHeader} bytes`)
  const headerLen = Number(n)
  if (8 + headerLen > bytes.length) throw new SafetensorsError(`header length ${headerLen} runs past the end of the ${bytes.length}-byte file`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes.subarray(8, 8 + headerLen))
  } catch {
    throw new SafetensorsError('header is not valid UTF-8')
  }
  if (!text.startsWith('{')) throw new SafetensorsError('header must be a JSON object starting with "{"')
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch (err) {
    throw new SafetensorsError(`header is not valid JSON: ${(err as Error).message}`)
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('header must be a JSON object')
  const data = bytes.subarray(8 + headerLen)
  const tensors = new Map<string, Tensor>()
  let metadata: Record<string, string> | undefined
  const spans: Array<{ name: string, begin: number, end: number }> = []
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError(`${METADATA_KEY} must be an object of strings`)
      metadata = {}
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${METADATA_KEY}.${k} must be a string`)
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true })
      }
      continue
    }
    const where = `tensor '${name}'`
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError(`${where}: entry must be an object with dtype, shape and data_offsets`)
    const r = raw as Record<string, unknown>
    for (const k of Object.keys(r)) if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw new SafetensorsError(`${where}: unexpected field '${k}'`)
    const dtype = typeof r.dtype === 'string' ? FROM_WIRE[r.dtype] : undefined
    if (dtype === undefined) throw new SafetensorsError(`${where}: unsupported dtype ${JSON.stringify(r.dtype)} (supported: ${Object.keys(FROM_WIRE).join(', ')})`)
    const shape = checkShape(r.shape, where)
    const off = r.data_offsets
    if (!Array.isArray(off) || off.length !== 2 || !off.every(x => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
      throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with non-negative integers`)
    }
    const [begin, end] = off as [number, number]
    if (begin > end) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin`)
    if (end > data.length) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] run past the ${data.length} data bytes`)
    const want = numel(shape) * DTYPE_BYTES[dtype]
    if (end - begin !== want) throw new SafetensorsError(`${where}: data_offsets span ${end - begin} bytes, shape [${shape.join(', ')}] of ${dtype} needs ${want}`)
    spans.push({ name, begin, end })
    const slice = data.subarray(begin, end)
    tensors.set(name, { dtype, shape, data: options.copy === true ? new Uint8Array(slice) : slice })
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let cursor = 0
  for (const s of spans) {
    if (s.begin < cursor) throw new SafetensorsError(`tensor '${s.name}' overlaps the tensor before it (offset ${s.begin} < ${cursor})`)
    if (s.begin > cursor) throw new SafetensorsError(`data has a gap of ${s.begin - cursor} bytes before tensor '${s.name}'`)
    cursor = s.end
  }
  if (cursor !== data.length) throw new SafetensorsError(`data has ${data.length - cursor} bytes after the last tensor`)
  return metadata !== undefined ? { tensors, metadata } : { tensors }
}

// ---- float16 / bfloat16 ----

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

export function float16BitsToFloat32 (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

/** float32 (or any number, first rounded to float32) -> IEEE half bits, round to nearest even. */
export function float32ToFloat16Bits (value: number): number {
  f32[0] = value
  const x = u32[0]!
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign // too small even for a subnormal: signed zero
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  // a carry out of the mantissa moves into the exponent, up to infinity, which is the right rounding
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++
  return sign | half
}

export function bfloat16BitsToFloat32 (b: number): number {
  u32[0] = (b & 0xffff) << 16
  return f32[0]!
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function float32ToBfloat16Bits (value: number): number {
  f32[0] = value
  const x = u32[0]!
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff
  const rounded = x + 0x7fff + ((x >>> 16) & 1)
  return (rounded >>> 16) & 0xffff
}

export function float16ToFloat32 (bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i]!)
  return out
}

export function float32ToFloat16 (values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!)
  return out
}

export function bfloat16ToFloat32 (bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  const o32 = new Uint32Array(out.buffer)
  for (let i = 0; i < bits.length; i++) o32[i] = bits[i]! << 16
  return out
}

export function float32ToBfloat16 (values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]!)
  return out
}
