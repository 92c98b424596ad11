import { Type, type Static } from '@sinclair/typebox'

/** Schemas of the content layer's JSON-RPC results (OpenRPC) and their TypeScript types (clients). */

export const RegistryEntrySchema = Type.Object({
  publisher: Type.String({ description: 'peer id of the publisher, whose key signed the record' }),
  name: Type.String(),
  version: Type.String(),
  cid: Type.String({ description: 'UnixFS root of the taskpack (CIDv1 base32)' }),
  sha256: Type.String({ description: 'sha256:<hex> over the canonical file listing' }),
  publishedAt: Type.String(),
  allowListed: Type.Boolean({ description: "the publisher is this node or on this node's publishers.allow list" }),
  signature: Type.String()
})
export type RegistryEntryResult = Static<typeof RegistryEntrySchema>

export const PublishTaskpackResult = Type.Object({
  record: RegistryEntrySchema,
  key: Type.String({ description: 'DHT key of the signed record' }),
  files: Type.Integer(),
  bytes: Type.Integer(),
  existing: Type.Boolean({ description: 'this exact record was already published' }),
  warnings: Type.Array(Type.String())
})
export type PublishTaskpackResult = Static<typeof PublishTaskpackResult>

export const ResolveTaskpackResult = Type.Object({
  name: Type.String(),
  version: Type.String(),
  chosen: Type.Union([RegistryEntrySchema, Type.Null()]),
  publishers: Type.Array(RegistryEntrySchema),
  ambiguous: Type.Boolean({ description: 'several publishers use this name@version' }),
  note: Type.String(),
  fetched: Type.Optional(Type.Object({ source: Type.String(), bytes: Type.Integer() }))
})
export type ResolveTaskpackResult = Static<typeof ResolveTaskpackResult>

export const TensorInfo = Type.Object({ name: Type.String(), dtype: Type.String(), shape: Type.Array(Type.Integer()) })

export const PutTensorResult = Type.Object({
  uri: Type.String({ description: 'ipfs://<cid>' }),
  cid: Type.String(),
  bytes: Type.Integer(),
  tensors: Type.Array(TensorInfo)
})
export type PutTensorResult = Static<typeof PutTensorResult>

export const GetTensorResult = Type.Object({
  uri: Type.String(),
  cid: Type.String(),
  bytes: Type.Integer(),
  source: Type.String({ description: 'where the content came from: local, blocks (BitFlow block protocol) or bitswap' }),
  tensors: Type.Array(TensorInfo),
  safetensorsBase64: Type.Optional(Type.String({ description: 'the file, when small and no out path was given' })),
  out: Type.Optional(Type.String({ description: 'file written' }))
})
export type GetTensorResult = Static<typeof GetTensorResult>

export const FetchResultSchema = Type.Object({
  cid: Type.String(),
  source: Type.String(),
  blocks: Type.Integer(),
  bytes: Type.Integer(),
  ms: Type.Number(),
  providersTried: Type.Array(Type.String()),
  liars: Type.Array(Type.String({ description: 'providers dropped for sending bad blocks' }))
})
export type FetchContentResult = Static<typeof FetchResultSchema>

export const ContentStat = Type.Object({
  cid: Type.String(),
  local: Type.Boolean({ description: 'the root block is in the local store' }),
  complete: Type.Boolean({ description: 'every block of the DAG is in the local store' }),
  pinned: Type.Boolean(),
  blocks: Type.Integer({ description: 'blocks of the DAG present locally' }),
  bytes: Type.Integer({ description: 'bytes of those blocks' })
})
export type ContentStat = Static<typeof ContentStat>

export const PinEntry = Type.Object({ cid: Type.String(), metadata: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])) })
export type PinEntry = Static<typeof PinEntry>

export const GcResult = Type.Object({ removed: Type.Integer({ description: 'blocks deleted' }), blocksBefore: Type.Integer(), blocksAfter: Type.Integer(), bytesBefore: Type.Integer(), bytesAfter: Type.Integer() })
export type GcResult = Static<typeof GcResult>

export const DatasetRecordSchema = Type.Object({
  format: Type.String(),
  id: Type.String({ description: 'hex sha256 of the canonical file listing' }),
  uri: Type.String({ description: 'dataset://<id>' }),
  name: Type.String(),
  path: Type.String(),
  files: Type.Integer(),
  bytes: Type.Integer(),
  addedAt: Type.String()
})
export type DatasetRecordResult = Static<typeof DatasetRecordSchema>

export const RegisterModelResult = Type.Object({
  modelId: Type.String({ description: 'CID of the canonical model definition' }),
  name: Type.String(),
  tasks: Type.Integer(),
  pinned: Type.Array(Type.String({ description: 'CIDs pinned for the model: the definition, each taskpack and weights' }))
})
export type RegisterModelResult = Static<typeof RegisterModelResult>

export const GetModelResult = Type.Object({ modelId: Type.String(), model: Type.Unknown(), source: Type.String() })
export type GetModelResult = Static<typeof GetModelResult>

export const TransferEventSchema = Type.Object({
  id: Type.String(),
  cid: Type.String(),
  phase: Type.String({ description: 'start, provider, progress, provider-failed, provider-lied, fallback, done, failed' }),
  source: Type.String(),
  peer: Type.Optional(Type.String()),
  blocks: Type.Integer(),
  bytes: Type.Integer(),
  totalBytes: Type.Optional(Type.Integer()),
  message: Type.Optional(Type.String()),
  at: Type.Number()
})
