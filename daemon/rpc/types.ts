import { Type, type Static } from '@sinclair/typebox'

/** Schemas of JSON-RPC results, shared by the server (OpenRPC) and BitflowClient (types). */

export const NodeInfo = Type.Object({
  peerId: Type.String(),
  solanaAddress: Type.String(),
  roles: Type.Array(Type.String()),
  network: Type.String(),
  genesisHash: Type.String(),
  version: Type.String(),
  listenAddresses: Type.Array(Type.String(), { description: 'multiaddrs other peers can dial, with /p2p/<peerId>' }),
  uptimeSeconds: Type.Number(),
  startedAt: Type.String(),
  rpcUrl: Type.String(),
  metricsUrl: Type.Union([Type.String(), Type.Null()])
})
export type NodeInfo = Static<typeof NodeInfo>

export const PeerInfo = Type.Object({
  peerId: Type.String(),
  addresses: Type.Array(Type.String(), { description: 'remote addresses of the open connections' }),
  direction: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
  connectedAt: Type.String(),
  protocols: Type.Array(Type.String(), { description: 'protocols the peer announced over identify' })
})
export type PeerInfo = Static<typeof PeerInfo>

export const PeerEvent = Type.Object({
  event: Type.Union([Type.Literal('connect'), Type.Literal('disconnect')]),
  peerId: Type.String(),
  peers: Type.Integer({ description: 'connected peers after the event' }),
  at: Type.String()
})
export type PeerEvent = Static<typeof PeerEvent>

export const ConnectResult = Type.Object({
  peerId: Type.String(),
  address: Type.String(),
  latencyMs: Type.Union([Type.Number(), Type.Null()])
})
export type ConnectResult = Static<typeof ConnectResult>

export const ProbePublishResult = Type.Object({
  ids: Type.Array(Type.String()),
  published: Type.Integer(),
  recipientsFirst: Type.Integer({ description: 'peers the first probe was sent to directly' })
})
export type ProbePublishResult = Static<typeof ProbePublishResult>

export const ProbeRecord = Type.Object({
  id: Type.String(),
  origin: Type.String(),
  sentAtMs: Type.Number(),
  receivedAtMs: Type.Number(),
  latencyMs: Type.Number()
})
export type ProbeRecord = Static<typeof ProbeRecord>

const GpuSchema = Type.Object({ model: Type.String(), vramBytes: Type.Integer(), simulated: Type.Optional(Type.Boolean()) })
export const LivenessEntrySchema = Type.Object({
  peerId: Type.String(),
  status: Type.Union(['available', 'busy', 'draining', 'offline'].map(s => Type.Literal(s)), { description: 'offline after 3 missed heartbeats; otherwise what the node reports' }),
  reportedStatus: Type.String(),
  bootEpoch: Type.Integer(),
  seq: Type.Integer(),
  lastSeen: Type.String(),
  lastSeenMs: Type.Number(),
  sinceMs: Type.Number({ description: 'when the current status began' }),
  capacity: Type.Object({ taskSlots: Type.Integer(), freeSlots: Type.Integer(), freeMemoryBytes: Type.Integer() }),
  hardware: Type.Object({ cpuModel: Type.String(), cpuCores: Type.Integer(), ramBytes: Type.Integer(), gpus: Type.Array(GpuSchema) }),
  specializations: Type.Array(Type.String()),
  datasets: Type.Array(Type.String()),
  software: Type.String()
})

export const LivenessEventSchema = Type.Object({
  peerId: Type.String(),
  from: Type.String(),
  to: Type.String(),
  at: Type.String(),
  node: LivenessEntrySchema
})

export const TableEntrySchema = Type.Object({
  peerId: Type.String(),
  status: Type.String(),
  bootEpoch: Type.Integer(),
  seq: Type.Integer(),
  capacity: Type.Object({ taskSlots: Type.Integer(), freeSlots: Type.Integer(), freeMemoryBytes: Type.Integer() }),
  hardware: Type.Object({ cpuModel: Type.String(), cpuCores: Type.Integer(), ramBytes: Type.Integer(), gpus: Type.Array(GpuSchema) }),
  specializations: Type.Array(Type.String()),
  datasets: Type.Array(Type.String()),
  software: Type.String()
})

export const CommitteeRoundSchema = Type.Object({
  round: Type.Integer(),
  tableHash: Type.Union([Type.String(), Type.Null()]),
  certified: Type.Boolean(),
  signers: Type.Array(Type.String()),
  threshold: Type.Integer(),
  members: Type.Array(Type.String()),
  equivocators: Type.Array(Type.String()),
  table: Type.Array(TableEntrySchema)
})

// ---- agent scoring (daemon/services/agents.ts) ----

export const AgentSubmissionSchema = Type.Object({
  submitter: Type.String(),
  sha256: Type.String({ description: 'hex sha256 of agent.py' }),
  bytes: Type.Integer(),
  submittedAt: Type.String(),
  imports: Type.Array(Type.String(), { description: 'top-level standard-library modules it imports' }),
  warnings: Type.Array(Type.String(), { description: 'accepted, but e.g. a module the validator disqualifies' })
})

const AgentTaskScoreSchema = Type.Object({
  task: Type.String(),
  passed: Type.Integer(),
  total: Type.Integer(),
  outcome: Type.Union(['passed', 'failed', 'timeout', 'oom', 'error', 'bad-output'].map(s => Type.Literal(s))),
  reason: Type.Optional(Type.String()),
  durationMs: Type.Optional(Type.Integer())
})

export const AgentRankingsSchema = Type.Object({
  scoredAt: Type.Union([Type.String(), Type.Null()], { description: 'null until a round has been scored' }),
  seed: Type.Integer({ description: 'seed of the randomly drawn cases' }),
  suite: Type.Object({ tasks: Type.Array(Type.String()), assertions: Type.Integer() }),
  taskTimeoutMs: Type.Integer(),
  rewardPool: Type.Number(),
  rewardUnit: Type.String(),
  rankings: Type.Array(Type.Object({
    rank: Type.Integer(),
    submitter: Type.String(),
    sha256: Type.String(),
    score: Type.Integer({ minimum: 0, maximum: 100 }),
    passed: Type.Integer(),
    total: Type.Integer(),
    reward: Type.Number({ description: 'simulated: the pool split in proportion to scores' }),
    reason: Type.String({ description: 'why the score is below 100 (empty at 100)' }),
    disqualified: Type.Boolean(),
    tasks: Type.Array(AgentTaskScoreSchema)
  }))
})

export const NetworkParamsResultSchema = Type.Object({
  source: Type.Union([Type.Literal('chain'), Type.Literal('preset')]),
  network: Type.String(),
  programId: Type.Union([Type.String(), Type.Null()]),
  config: Type.Union([Type.String(), Type.Null()]),
  committeeEpoch: Type.Union([Type.Integer(), Type.Null()]),
  threshold: Type.Union([Type.Integer(), Type.Null()]),
  params: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String()])),
  safety: Type.Object({ safe: Type.Boolean(), margin: Type.Number(), minSamplingProbability: Type.Number(), explanation: Type.String() }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  refreshedAt: Type.Union([Type.String(), Type.Null()])
})

export const RegistryEntrySchema = Type.Object({
  operator: Type.String(),
  owner: Type.String(),
  account: Type.String(),
  status: Type.String(),
  stake: Type.String({ description: 'stake-mint base units' }),
  unbonding: Type.String(),
  paymentsInFlight: Type.String(),
  capacity: Type.Integer(),
  specializations: Type.Array(Type.String({ description: 'hex of the 32-byte task id' }))
})

// ---- execution (issue 7) ----

const NullableString = Type.Union([Type.String(), Type.Null()])
const NullableInt = Type.Union([Type.Integer(), Type.Null()])

export const TaskExecutionStatusSchema = Type.Object({
  taskId: Type.String({ description: '<model CID>/<task number>' }),
  task: Type.Integer(),
  status: Type.String({ description: 'UNASSIGNED | ASSIGNED | COMPLETED | PENDING_VERIFICATION | VERIFIED | VERIFICATION_FAILED | FAILED' }),
  attempt: NullableInt,
  assignedNode: NullableString,
  unverifiable: Type.Boolean({ description: 'the live (or last) attempt was assigned as unverifiable: a dataset:// input that no validator other than the assigned node holds, so it is never sampled or slashed and is paid the network\'s reduced rate' }),
  blacklist: Type.Array(Type.String()),
  inputUris: Type.Record(Type.String(), NullableString),
  outputUris: Type.Record(Type.String(), Type.String()),
  startTime: NullableInt,
  deadline: NullableInt,
  selection: Type.Union([Type.Object({
    livenessRound: Type.Integer({ description: 'the certified liveness round the node was drawn from' }),
    seedSlot: Type.Integer({ description: 'the slot whose SlotHashes entry seeded the draw' }),
    seed: Type.String({ description: 'hex of the 32-byte seed, as recorded on chain' }),
    ballot: Type.Integer()
  }), Type.Null()], { description: 'how the live (or last) primary attempt was drawn, when this daemon took part (oracles)' }),
  completionTime: NullableInt,
  failures: Type.Array(Type.Object({ attempt: Type.Integer(), node: Type.String(), reason: Type.String(), at: Type.Integer() })),
  waiting: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'why the task has no assignment yet (its dependencies; on an oracle, the seed, the eligible nodes or the quorum it waits for); null when it is not waiting' }))
})

export const ModelExecutionStatusSchema = Type.Object({
  id: Type.String(),
  modelId: Type.String(),
  requestor: Type.String(),
  fee: Type.String({ description: 'escrowed stake-mint base units' }),
  overallStatus: Type.String({ description: 'pending | in-progress | completed | failed | cancelled' }),
  reason: NullableString,
  inputUris: Type.Record(Type.String(), Type.String()),
  outputUris: Type.Record(Type.String(), NullableString),
  readyTasks: Type.Array(Type.String()),
  taskStatuses: Type.Array(TaskExecutionStatusSchema),
  startTime: Type.Integer(),
  completionTime: NullableInt,
  requestSlot: Type.Integer(),
  account: NullableString
})

export const RequestExecutionResultSchema = Type.Object({
  executionId: Type.String(),
  account: Type.String({ description: 'the execution account on chain' }),
  requestSlot: Type.Integer(),
  pricePerTask: Type.String(),
  escrowed: Type.String(),
  signature: Type.String()
})

export const ExecutionTransitionEventSchema = Type.Object({
  executionId: Type.String(),
  scope: Type.String({ description: 'task | execution' }),
  at: Type.Integer(),
  from: Type.String(),
  to: Type.String(),
  taskId: Type.Optional(Type.String()),
  attempt: Type.Optional(NullableInt),
  node: Type.Optional(NullableString),
  reason: Type.Optional(Type.String())
})

// ---- disputes and slashing (issue 8) ----

export const SlashEntrySchema = Type.Object({
  slash: NullableString,
  executionId: NullableString,
  execution: Type.String({ description: 'the execution account on chain' }),
  taskId: Type.String({ description: '<model CID>/<task number> when known, else the hex task key' }),
  attempt: Type.Integer({ description: 'the disputed primary attempt' }),
  accused: NullableString,
  accusedNode: Type.String({ description: 'the accused node account' }),
  accusedRole: Type.Union([Type.Literal('asserter'), Type.Literal('verifier'), Type.Null()]),
  prover: NullableString,
  status: Type.String({ description: 'voting | recorded | executed' }),
  amount: NullableString,
  bounty: NullableString,
  bountyTo: NullableString,
  stakeBefore: NullableString,
  stakeAfter: NullableString,
  recordedAt: Type.Union([Type.Number(), Type.Null()], { description: 'unix seconds (chain clock)' }),
  executableAt: Type.Union([Type.Number(), Type.Null()], { description: 'unix seconds (chain clock)' }),
  reason: NullableString,
  recordSignature: NullableString,
  executeSignature: NullableString
})

export const DisputeEntrySchema = Type.Object({
  executionId: Type.String(),
  taskId: Type.String(),
  attempt: Type.Integer(),
  verifierAttempt: NullableInt,
  thirdAttempt: NullableInt,
  kind: Type.String({ description: 'verification-failed | verified-suspicious' }),
  status: Type.String({ description: 'open | voting | recorded | executed | no-fraud | nondeterministic | already-slashed | abandoned' }),
  accused: NullableString,
  accusedRole: Type.Union([Type.Literal('asserter'), Type.Literal('verifier'), Type.Null()]),
  reason: NullableString,
  openedAt: Type.Integer(),
  decidedAt: NullableInt,
  fraudCompletedAt: NullableInt,
  recordedSeenAt: NullableInt,
  executedSeenAt: NullableInt
})

export const SlashesResultSchema = Type.Object({
  slashes: Type.Array(SlashEntrySchema),
  disputes: Type.Array(DisputeEntrySchema),
  nondeterministic: Type.Array(Type.Object({ taskpack: Type.String(), executionId: Type.String(), taskId: Type.String(), reason: Type.String(), at: Type.Integer() }))
})
