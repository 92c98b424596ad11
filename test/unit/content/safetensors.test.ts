import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DTYPES, createTensor, decodeSafetensors, encodeSafetensors, tensorValues, SafetensorsError, type DType, type Tensor,
  float16BitsToFloat32, float32ToFloat16Bits, bfloat16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16, float16ToFloat32, float32ToBfloat16, bfloat16ToFloat32
} from '../../../protocols/tensor/safetensors.js'
import { checkNumpy, python } from './python.js'

const SAMPLES: Record<DType, Array<number | bigint | boolean>> = {
  float16: [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity, -Infinity],
  bfloat16: [0, 1, -2.5, 3.125, 1e30, -1e-30, Infinity],
  float32: [0, 1.5, -3.25, 3.4028234663852886e38, 1.401298464324817e-45, Math.fround(0.1)],
  float64: [0, Math.PI, -Number.MAX_VALUE, Number.MIN_VALUE, 1e-300],
  int8: [-128, -1, 0, 1, 127, 5],
  uint8: [0, 1, 128, 255, 7, 9],
  int16: [-32768, -1, 0, 32767, 1234, -1234],
  int32: [-(2 ** 31), -1, 0, 2 ** 31 - 1, 123456, -7],
  int64: [-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n, 9007199254740993n, 42n],
  bool: [true, false, false, true, true, false]
}

function tensorFor (dtype: DType): Tensor {
  const v = SAMPLES[dtype]
  const shape = v.length % 3 === 0 ? [3, v.length / 3] : [v.length]
  return createTensor(dtype, shape, v as ArrayLike<number>)
}

function expectDecodeError (bytes: Uint8Array, pattern: RegExp): void {
  expect(() => decodeSafetensors(bytes)).toThrowError(SafetensorsError)
  expect(() => decodeSafetensors(bytes)).toThrowError(pattern)
}

/** A hand-made file: header object as given, `data` bytes. */
function raw (header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

describe('safetensors', () => {
  it('round-trips every dtype exactly', () => {
    for (const dtype of DTYPES) {
      const t = tensorFor(dtype)
      const decoded = decodeSafetensors(encodeSafetensors({ [dtype]: t })).tensors.get(dtype)!
      expect(decoded.dtype).toBe(dtype)
      expect(decoded.shape).toEqual(t.shape)
      expect(Buffer.from(decoded.data).equals(Buffer.from(t.data))).toBe(true)
      const values = Array.from(tensorValues(decoded) as ArrayLike<number | bigint>)
      const want = SAMPLES[dtype].map(v => typeof v === 'boolean' ? (v ? 1 : 0) : v)
      if (dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float32') {
        // representable in the dtype, so exact
        expect(values).toEqual(want.map(v => dtype === 'bfloat16' ? bfloat16BitsToFloat32(float32ToBfloat16Bits(v as number)) : v))
      } else {
        expect(values).toEqual(want)
      }
    }
  })

  it('round-trips many tensors with metadata, deterministically and 8-byte aligned', () => {
    const tensors = Object.fromEntries(DTYPES.map(d => [`t_${d}`, tensorFor(d)]))
    const a = encodeSafetensors(tensors, { format: 'pt', note: 'ünïcode' })
    const reversed = Object.fromEntries(Object.entries(tensors).reverse())
    expect(Buffer.from(encodeSafetensors(reversed, { note: 'ünïcode', format: 'pt' })).equals(Buffer.from(a))).toBe(true)
    const headerLen = Number(new DataView(a.buffer).getBigUint64(0, true))
    expect(headerLen % 8).toBe(0)
    const d = decodeSafetensors(a)
    expect(d.metadata).toEqual({ format: 'pt', note: 'ünïcode' })
    expect([...d.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort())
    const empty = decodeSafetensors(encodeSafetensors({ e: createTensor('float32', [0, 3], []) })).tensors.get('e')!
    expect(empty.shape).toEqual([0, 3])
    const scalar = decodeSafetensors(encodeSafetensors({ s: createTensor('int32', [], [7]) })).tensors.get('s')!
    expect(Array.from(tensorValues(scalar) as Int32Array)).toEqual([7])
  })

  it('decodes from a Buffer view at any offset (pooled, unaligned)', () => {
    const file = encodeSafetensors({ x: createTensor('float64', [2], [1.25, -3]), y: createTensor('int16', [1], [-2]) })
    const big = Buffer.alloc(file.length + 3)
    big.set(file, 3)
    const view = big.subarray(3)
    const d = decodeSafetensors(view)
    expect(Array.from(tensorValues(d.tensors.get('x')!) as Float64Array)).toEqual([1.25, -3])
    expect(Array.from(tensorValues(d.tensors.get('y')!) as Int16Array)).toEqual([-2])
    const copied = decodeSafetensors(view, { copy: true }).tensors.get('x')!
    big.fill(0)
    expect(Array.from(tensorValues(copied) as Float64Array)).toEqual([1.25, -3])
  })

  it('refuses values that do not fit', () => {
    expect(() => createTensor('uint8', [1], [256])).toThrow(/does not fit uint8/)
    expect(() => createTensor('int8', [1], [1.5])).toThrow(/does not fit int8/)
    expect(() => createTensor('int64', [1], [2 ** 60])).toThrow(/pass a bigint/)
    expect(() => createTensor('float32', [2, 2], [1, 2, 3])).toThrow(/needs 4 values, got 3/)
    expect(() => createTensor('bool', [1], [2])).toThrow(/not a boolean/)
  })

  it('rejects malformed and hostile files with a clear reason', () => {
    const four = new Uint8Array(4)
    expectDecodeError(new Uint8Array(5), /starts with an 8-byte header length/)
    expectDecodeError(raw({}, four, 2n ** 62n), /header length \d+ exceeds the limit/)
    expectDecodeError(raw({}, four, 1000n), /runs past the end/)
    expectDecodeError(raw('[1,2]'), /must be a JSON object starting with/)
    expectDecodeError(raw('{"a":'), /not valid JSON/)
    const bad = raw({ a: 1 }); bad[9] = 0xff
    expectDecodeError(bad, /not valid UTF-8/)
    expectDecodeError(raw({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype "F8"/)
    expectDecodeError(raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, four), /run past the 4 data bytes/)
    expectDecodeError(raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, four), /span 4 bytes, shape \[2\] of float32 needs 8/)
    expectDecodeError(raw({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, four), /shape must be a list of non-negative integers/)
    expectDecodeError(raw({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, four), /end before they begin/)
    expectDecodeError(raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, four), /overlaps/)
    expectDecodeError(raw({ a: { dtype: 'U8', shape: [2], data_offsets: [2, 4] } }, four), /gap of 2 bytes before tensor 'a'/)
    expectDecodeError(raw({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, four), /2 bytes after the last tensor/)
    expectDecodeError(raw({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4], extra: 1 } }, four), /unexpected field 'extra'/)
    expectDecodeError(raw({ __metadata__: { a: 1 } }), /__metadata__\.a must be a string/)
    expectDecodeError(raw({ a: { dtype: 'U8', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, four), /too many elements/)
    expect(() => decodeSafetensors(raw({}, new Uint8Array(0)), { maxHeaderBytes: 1 })).toThrow(/exceeds the limit of 1 bytes/)
  })

  it('converts float16 exactly as IEEE 754 (round to nearest even)', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00)
    expect(float32ToFloat16Bits(-2)).toBe(0xc000)
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff)
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00) // halfway to the next step: rounds to even, infinity
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff)
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001)
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000)
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001)
    expect(float32ToFloat16Bits(-0)).toBe(0x8000)
    expect(float32ToFloat16Bits(0.1)).toBe(0x2e66)
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie, even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02) // tie, rounds up to even
    expect(float32ToFloat16Bits(NaN) & 0x7e00).toBe(0x7e00)
    expect(float16BitsToFloat32(0x7c00)).toBe(Infinity)
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24)
    // every half value survives the round trip
    for (let h = 0; h < 0x10000; h++) {
      const f = float16BitsToFloat32(h)
      if (Number.isNaN(f)) { expect(h & 0x7c00).toBe(0x7c00); continue }
      if (float32ToFloat16Bits(f) !== h) throw new Error(`half ${h.toString(16)} -> ${f} -> ${float32ToFloat16Bits(f).toString(16)}`)
    }
    const arr = float32ToFloat16([1, 2, 0.5])
    expect(Array.from(float16ToFloat32(arr))).toEqual([1, 2, 0.5])
  })

  it('converts bfloat16 with round to nearest even and keeps NaN', () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80)
    expect(float32ToBfloat16Bits(Math.fround(0.1))).toBe(0x3dcd)
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80) // tie, even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82)
    expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN)))).toBe(true)
    expect(bfloat16BitsToFloat32(float32ToBfloat16Bits(-Infinity))).toBe(-Infinity)
    for (let b = 0; b < 0x10000; b++) {
      const f = bfloat16BitsToFloat32(b)
      if (Number.isNaN(f)) continue
      if (float32ToBfloat16Bits(f) !== b) throw new Error(`bf16 ${b.toString(16)} round trip`)
    }
    expect(Array.from(bfloat16ToFloat32(float32ToBfloat16([1, -2, 0.5])))).toEqual([1, -2, 0.5])
  })
})

describe('safetensors interop with numpy (python3-numpy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitflow-st-'))
  beforeAll(() => { checkNumpy() })
  afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

  it('numpy reads what BitFlow writes, every dtype, with an independent reader and with the SDK', () => {
    const tensors = Object.fromEntries(DTYPES.map(d => [`t_${d}`, tensorFor(d)]))
    const file = join(dir, 'ts.safetensors')
    writeFileSync(file, encodeSafetensors(tensors, { producer: 'bitflow-ts' }))
    const out = python(`
import json, struct, sys
import numpy as np
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
header = json.loads(data[8:8 + n])
body = data[8 + n:]
def conv(a):
    # JSON-safe: integers as strings (int64 exceeds doubles), infinities as strings
    out = []
    for v in a.reshape(-1).tolist():
        if isinstance(v, bool): out.append(v)
        elif isinstance(v, int): out.append(str(v))
        elif v in (float('inf'), float('-inf')): out.append(repr(v))
        else: out.append(v)
    return out
np_types = {'F16': '<f2', 'F32': '<f4', 'F64': '<f8', 'I8': 'i1', 'U8': 'u1', 'I16': '<i2', 'I32': '<i4', 'I64': '<i8', 'BOOL': '?', 'BF16': '<u2'}
res = {'__metadata__': header.pop('__metadata__')}
for name, e in sorted(header.items()):
    b, end = e['data_offsets']
    a = np.frombuffer(body[b:end], dtype=np_types[e['dtype']]).reshape(e['shape'])
    if e['dtype'] == 'BF16':
        a = (a.astype(np.uint32) << 16).view(np.float32)
    res[name] = {'dtype': e['dtype'], 'shape': list(a.shape), 'values': conv(a)}
import bitflow_sdk
sdk = bitflow_sdk.read_safetensors(sys.argv[1])
for name, a in sdk.items():
    assert conv(a) == res[name]['values'], name
print(json.dumps(res))
`, [file])
    const res = JSON.parse(out) as Record<string, { dtype: string, shape: number[], values: Array<number | string | boolean | null> }>
    expect(res.__metadata__).toEqual({ producer: 'bitflow-ts' })
    for (const dtype of DTYPES) {
      const r = res[`t_${dtype}`]!
      expect(r.shape).toEqual(tensorFor(dtype).shape)
      const want = SAMPLES[dtype].map(v => {
        if (typeof v === 'boolean') return v
        if (typeof v === 'bigint' || dtype.includes('int')) return String(v)
        const f = dtype === 'bfloat16' ? bfloat16BitsToFloat32(float32ToBfloat16Bits(v)) : v
        return Number.isFinite(f) ? f : f > 0 ? 'inf' : '-inf'
      })
      expect(r.values, dtype).toEqual(want)
    }
  })

  it('BitFlow reads what numpy writes, and the SDK writer produces the same bytes as ours', () => {
    const file = join(dir, 'np.safetensors')
    const sdkFile = join(dir, 'sdk.safetensors')
    python(`
import json, struct, sys
import numpy as np
rng = np.random.default_rng(3)
arrays = {
    'weights': rng.standard_normal((4, 5)).astype(np.float32),
    'half': np.array([[1.0, -0.5], [65504.0, 6.1e-5]], dtype=np.float16),
    'ids': np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
    'mask': np.array([True, False, True]),
    'bytes': np.array([0, 255, 7], dtype=np.uint8),
    'f64': np.array([np.pi, -1e-300]),
}
# an independent writer: numpy bytes in numpy's order, header in insertion order, no padding
names = ['weights', 'half', 'ids', 'mask', 'bytes', 'f64']
codes = {'float32': 'F32', 'float16': 'F16', 'int64': 'I64', 'bool': 'BOOL', 'uint8': 'U8', 'float64': 'F64'}
header, blobs, off = {'__metadata__': {'format': 'np'}}, [], 0
for n in names:
    b = arrays[n].astype(arrays[n].dtype.newbyteorder('<')).tobytes()
    header[n] = {'dtype': codes[str(arrays[n].dtype)], 'shape': list(arrays[n].shape), 'data_offsets': [off, off + len(b)]}
    off += len(b); blobs.append(b)
h = json.dumps(header).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
import bitflow_sdk
bitflow_sdk.write_safetensors(sys.argv[2], arrays, metadata={'format': 'np'})
json.dump({n: arrays[n].reshape(-1).tolist() for n in names}, open(sys.argv[1] + '.json', 'w'))
`, [file, sdkFile])
    const expected = JSON.parse(readFileSync(file + '.json', 'utf8')) as Record<string, Array<number | boolean>>
    const decoded = decodeSafetensors(readFileSync(file))
    expect(decoded.metadata).toEqual({ format: 'np' })
    const get = (n: string): Tensor => decoded.tensors.get(n)!
    expect(get('weights').shape).toEqual([4, 5])
    expect(Array.from(tensorValues(get('weights')) as Float32Array)).toEqual(expected.weights!.map(v => Math.fround(v as number)))
    expect(get('half').dtype).toBe('float16')
    expect(Array.from(tensorValues(get('half')) as Float32Array)).toEqual(expected.half)
    expect(Array.from(tensorValues(get('ids')) as BigInt64Array)).toEqual(expected.ids!.map(v => BigInt(v as number)))
    expect(Array.from(tensorValues(get('mask')) as Uint8Array)).toEqual([1, 0, 1])
    expect(Array.from(tensorValues(get('bytes')) as Uint8Array)).toEqual([0, 255, 7])
    expect(Array.from(tensorValues(get('f64')) as Float64Array)).toEqual(expected.f64)
    // same tensors through our encoder: byte-identical to the Python SDK's writer
    const ours = encodeSafetensors(Object.fromEntries(decoded.tensors), decoded.metadata)
    expect(Buffer.from(ours).equals(readFileSync(sdkFile))).toBe(true)
  })

  it('float16 and bfloat16 rounding matches numpy bit for bit', () => {
    const out = python(`
import json
import numpy as np
from bitflow_sdk.safetensors_io import float32_to_bfloat16_bits
rng = np.random.default_rng(11)
x = np.concatenate([rng.standard_normal(3000) * 10.0 ** rng.integers(-9, 6, 3000), [65519.0, 65520.0, 1e-8, 3e-8, -0.0]]).astype(np.float32)
print(json.dumps({'x': x.view(np.uint32).tolist(), 'h': x.astype(np.float16).view(np.uint16).tolist(), 'b': float32_to_bfloat16_bits(x).tolist()}))
`)
    const { x, h, b } = JSON.parse(out) as { x: number[], h: number[], b: number[] }
    const f = new Float32Array(new Uint32Array(x).buffer)
    const mismatches = Array.from(f).filter((v, i) => float32ToFloat16Bits(v) !== h[i])
    expect(mismatches).toEqual([])
    // bfloat16: numpy has no type, so this checks the SDK's converter against ours
    expect(Array.from(f).filter((v, i) => float32ToBfloat16Bits(v) !== b[i])).toEqual([])
  })

  it('the SDK reader rejects the same hostile files', () => {
    const file = join(dir, 'bad.safetensors')
    writeFileSync(file, raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)))
    const out = python(`
import sys
from bitflow_sdk import read_safetensors, SafetensorsError
try:
    read_safetensors(sys.argv[1])
    print('accepted')
except SafetensorsError as e:
    print('rejected:', e)
`, [file])
    expect(out).toMatch(/^rejected: tensor 'b' overlaps/)
  })
})
