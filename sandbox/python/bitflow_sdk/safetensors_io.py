"""safetensors reader and writer on numpy.

Layout: u64 little-endian header length, a JSON header mapping tensor names to
{"dtype", "shape", "data_offsets"} (plus optional "__metadata__" of strings), then the
little-endian tensor bytes. The writer emits the same bytes as BitFlow's TypeScript encoder:
sorted keys, compact JSON, header padded with spaces to an 8-byte boundary, data in name order.
"""

import json
import struct

import numpy as np

from .errors import SafetensorsError

METADATA_KEY = '__metadata__'
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_RANK = 32

# safetensors dtype -> numpy storage dtype (bfloat16 is stored as its raw 16 bits)
_STORAGE = {
    'F16': np.dtype('<f2'), 'BF16': np.dtype('<u2'), 'F32': np.dtype('<f4'), 'F64': np.dtype('<f8'),
    'I8': np.dtype('i1'), 'U8': np.dtype('u1'), 'I16': np.dtype('<i2'), 'I32': np.dtype('<i4'),
    'I64': np.dtype('<i8'), 'BOOL': np.dtype('?'),
}
# (numpy kind, itemsize) -> safetensors dtype, whatever the array's byte order
_FROM_NUMPY = {
    ('f', 2): 'F16', ('f', 4): 'F32', ('f', 8): 'F64', ('i', 1): 'I8', ('u', 1): 'U8',
    ('i', 2): 'I16', ('i', 4): 'I32', ('i', 8): 'I64', ('b', 1): 'BOOL',
}


def bfloat16_bits_to_float32(bits):
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def float32_to_bfloat16_bits(values):
    """Round to nearest even; NaN stays a quiet NaN."""
    x = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((x + np.uint64(0x7FFF) + ((x >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)).astype(np.uint16)
    is_nan = ((x & np.uint64(0x7F800000)) == np.uint64(0x7F800000)) & ((x & np.uint64(0x7FFFFF)) != np.uint64(0))
    nan_bits = ((x >> np.uint64(16)) | np.uint64(0x40)).astype(np.uint16)
    return np.where(is_nan, nan_bits, rounded)


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def decode_safetensors(data, bfloat16='float32', copy=True):
    """Decodes untrusted bytes. Returns (tensors, metadata).

    bfloat16 tensors come back as float32 (bfloat16='float32') or as their raw uint16 bits
    (bfloat16='bits'), since numpy has no bfloat16 type.
    """
    data = memoryview(data).cast('B')
    if len(data) < 8:
        raise SafetensorsError('file is %d bytes; a safetensors file starts with an 8-byte header length' % len(data))
    (n,) = struct.unpack('<Q', data[:8])
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError('header length %d exceeds the limit of %d bytes' % (n, MAX_HEADER_BYTES))
    if 8 + n > len(data):
        raise SafetensorsError('header length %d runs past the end of the %d-byte file' % (n, len(data)))
    try:
        text = bytes(data[8:8 + n]).decode('utf-8')
    except UnicodeDecodeError:
        raise SafetensorsError('header is not valid UTF-8') from None
    if not text.startswith('{'):
        raise SafetensorsError('header must be a JSON object starting with "{"')
    try:
        header = json.loads(text)
    except ValueError as e:
        raise SafetensorsError('header is not valid JSON: %s' % e) from None
    if not isinstance(header, dict):
        raise SafetensorsError('header must be a JSON object')
    body = data[8 + n:]
    tensors = {}
    metadata = None
    spans = []
    for name, entry in header.items():
        if name == METADATA_KEY:
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise SafetensorsError('%s must be an object of strings' % METADATA_KEY)
            metadata = dict(entry)
            continue
        where = "tensor '%s'" % name
        if not isinstance(entry, dict) or set(entry) != {'dtype', 'shape', 'data_offsets'}:
            raise SafetensorsError('%s: entry must have exactly dtype, shape and data_offsets' % where)
        dtype = entry['dtype']
        if dtype not in _STORAGE:
            raise SafetensorsError('%s: unsupported dtype %r' % (where, dtype))
        shape = entry['shape']
        if (not isinstance(shape, list) or len(shape) > MAX_RANK
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise SafetensorsError('%s: shape must be a list of non-negative integers' % where)
        offs = entry['data_offsets']
        if not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int and o >= 0 for o in offs):
            raise SafetensorsError('%s: data_offsets must be [begin, end] with non-negative integers' % where)
        begin, end = offs
        if begin > end:
            raise SafetensorsError('%s: data_offsets [%d, %d] end before they begin' % (where, begin, end))
        if end > len(body):
            raise SafetensorsError('%s: data_offsets [%d, %d] run past the %d data bytes' % (where, begin, end, len(body)))
        storage = _STORAGE[dtype]
        want = _numel(shape) * storage.itemsize
        if end - begin != want:
            raise SafetensorsError('%s: data_offsets span %d bytes, shape %s of %s needs %d' % (where, end - begin, shape, dtype, want))
        spans.append((begin, end, name))
        arr = np.frombuffer(body[begin:end], dtype=storage).reshape(shape)
        if dtype == 'BF16' and bfloat16 == 'float32':
            arr = bfloat16_bits_to_float32(arr)
        elif copy:
            arr = arr.copy()
        tensors[name] = arr
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            raise SafetensorsError("tensor '%s' overlaps the tensor before it" % name)
        if begin > cursor:
            raise SafetensorsError("data has a gap of %d bytes before tensor '%s'" % (begin - cursor, name))
        cursor = end
    if cursor != len(body):
        raise SafetensorsError('data has %d bytes after the last tensor' % (len(body) - cursor))
    return tensors, metadata


def encode_safetensors(tensors, metadata=None, bfloat16=()):
    """Encodes a dict of numpy arrays. Names in `bfloat16` are stored as BF16 (rounded from float32)."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == METADATA_KEY:
            raise SafetensorsError("'%s' is reserved and cannot name a tensor" % METADATA_KEY)
        arr = np.asarray(tensors[name])
        if name in bfloat16:
            wire = 'BF16'
            raw = float32_to_bfloat16_bits(arr.astype(np.float32)).astype('<u2').tobytes()
        else:
            wire = _FROM_NUMPY.get((arr.dtype.kind, arr.dtype.itemsize))
            if wire is None:
                raise SafetensorsError("tensor '%s': unsupported numpy dtype %s" % (name, arr.dtype))
            raw = np.ascontiguousarray(arr, dtype=_STORAGE[wire]).tobytes()
        header[name] = {'dtype': wire, 'shape': [int(d) for d in arr.shape], 'data_offsets': [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError('metadata must map strings to strings')
        header[METADATA_KEY] = dict(metadata)
    text = json.dumps(header, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def read_safetensors(path, bfloat16='float32', with_metadata=False):
    with open(path, 'rb') as f:
        tensors, metadata = decode_safetensors(f.read(), bfloat16=bfloat16)
    return (tensors, metadata) if with_metadata else tensors


def write_safetensors(path, tensors, metadata=None, bfloat16=()):
    data = encode_safetensors(tensors, metadata=metadata, bfloat16=bfloat16)
    with open(path, 'wb') as f:
        f.write(data)
    return path
