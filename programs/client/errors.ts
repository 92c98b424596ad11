/**
 * The settlement program's own error codes, returned as `InstructionError::Custom(code)`.
 * Mirrors the `ERR_*` enum in programs/settlement/src/settlement.h: keep both in step.
 */
export enum ProgramError {
  /** malformed instruction data or unknown instruction tag */
  InvalidInstruction = 7000,
  /** the instruction envelope's version byte is not one this program understands */
  UnsupportedVersion = 7001,
  NotEnoughAccounts = 7002,
  MissingSigner = 7003,
  NotWritable = 7004,
  /** an account is owned by the wrong program */
  WrongAccountOwner = 7005,
  /** an address is not the canonical program-derived address (wrong seeds or bump) */
  WrongPda = 7006,
  AlreadyInitialized = 7007,
  /** not an initialized account of the expected kind and layout */
  WrongAccountKind = 7008,
  /** committee empty, larger than 7, with a zero key or a member listed twice */
  InvalidCommittee = 7009,
  InvalidParams = 7010,
  /** the PoSP safety condition p > C / ((1 - r)(R + S)) does not hold */
  UnsafeParams = 7011,
  WrongMint = 7012,
  WrongVault = 7013,
  WrongTokenProgram = 7014,
  WrongSystemProgram = 7015,
  /** only the node's owner key may move its stake */
  NotOwner = 7016,
  /** the signer is neither the node's owner nor its operator */
  NotNodeAuthority = 7017,
  /** the account belongs to another network config */
  WrongConfig = 7018,
  InvalidTokenAccount = 7019,
  StakeBelowMinimum = 7020,
  ArithmeticOverflow = 7021,
  InsufficientStake = 7022,
  NothingToWithdraw = 7023,
  UnbondingNotFinished = 7024,
  InvalidSpecializations = 7025,
  NodeSlashed = 7026,
  Rent = 7027,
  Clock = 7028,
  /** the instructions-sysvar account is not Sysvar1nstructions1111111111111111111111111 */
  WrongSysvar = 7029,
  /** an Ed25519 signature's offsets point outside its own instruction's data */
  Ed25519Offsets = 7030,
  /** a committee signature is not over the canonical digest the program rebuilt */
  SignedMessageMismatch = 7031,
  /** a signer is not a member of the current committee epoch */
  NotCommitteeMember = 7032,
  /** one member's signature appears twice */
  DuplicateSigner = 7033,
  /** fewer than threshold distinct members signed */
  QuorumNotReached = 7034,
  /** the signed message's expiry slot has passed */
  Expired = 7035,
  FeeBelowMinimum = 7036,
  /** execution task list empty, longer than 16, with a zero or repeated id; or a bad cancel mask */
  InvalidTasks = 7037,
  /** an account belongs to another execution, task or node */
  WrongExecution = 7038,
  /** cancel asked to refund a task that was assigned */
  TaskAlreadyAssigned = 7039,
  TaskCancelled = 7040,
  NodeNotSpecialized = 7041,
  NodeBlacklisted = 7042,
  /** the node's stake would fall below the minimum ratio of its payments in flight */
  StakeTooLowForPayments = 7043,
  /** the assignment already exists (replay) */
  AssignmentExists = 7044,
  /** the task has a live attempt, or is not waiting for this kind of assignment */
  TaskBusy = 7045,
  WrongAttempt = 7046,
  /** the seed or decision slot is not yet, or no longer, in SlotHashes */
  SeedUnavailable = 7047,
  EscrowInsufficient = 7048,
  NotOperator = 7049,
  WrongState = 7050,
  DeadlinePassed = 7051,
  DeadlineNotPassed = 7052,
  CommitmentMismatch = 7053,
  AlreadyPaid = 7054,
  /** superseded, unverified or failed assignment */
  NotPayable = 7055,
  AlreadySlashed = 7056,
  NoFraudEvidence = 7057,
  /** the challenge delay has not passed */
  ChallengePending = 7058,
  NotRequester = 7059,
  /** payout, refund, bounty or treasury account is not the entitled one */
  WrongRecipient = 7060,
  /** the verifier's commitment equals the asserter's */
  CopiedCommitment = 7061,
  InvalidBlacklist = 7062,
  /** close: live or unpaid assignments still hold part of the escrow */
  PaymentsReserved = 7063
}

/** The name of a program error code, or undefined for codes that are not the program's own. */
export function programErrorName (code: number): string | undefined {
  return ProgramError[code]
}
