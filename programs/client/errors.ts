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
  Clock = 7028
}

/** The name of a program error code, or undefined for codes that are not the program's own. */
export function programErrorName (code: number): string | undefined {
  return ProgramError[code]
}
