/*
 * BitFlow settlement program: account layouts, instruction layouts and error codes.
 * Every layout here is mirrored byte for byte by programs/client/layout.ts; change both together
 * and bump the layout version.
 */
#ifndef BITFLOW_SETTLEMENT_H
#define BITFLOW_SETTLEMENT_H

#include "sol.h"

/* ---- instruction envelope: [version u8][tag u8][reserved u16 = 0][reserved u32 = 0][args...] ---- */
#define IX_VERSION 1
#define IX_HEADER_SIZE 8

enum {
  IX_INITIALIZE_CONFIG = 0,
  IX_REGISTER_NODE = 1,
  IX_ADD_STAKE = 2,
  IX_UPDATE_CAPACITY = 3,
  IX_UNBOND = 4,
  IX_WITHDRAW = 5,
};

/* ---- the program's own error codes (InstructionError::Custom). Mirrored by ProgramError in
 * programs/client/errors.ts. ---- */
enum {
  ERR_INVALID_INSTRUCTION = 7000,  /* malformed instruction data or unknown tag */
  ERR_UNSUPPORTED_VERSION = 7001,  /* instruction envelope version not understood */
  ERR_NOT_ENOUGH_ACCOUNTS = 7002,
  ERR_MISSING_SIGNER = 7003,
  ERR_NOT_WRITABLE = 7004,
  ERR_WRONG_ACCOUNT_OWNER = 7005,  /* account owned by the wrong program */
  ERR_WRONG_PDA = 7006,            /* address is not the canonical program-derived address */
  ERR_ALREADY_INITIALIZED = 7007,
  ERR_WRONG_ACCOUNT_KIND = 7008,   /* not an initialized account of the expected kind and layout */
  ERR_INVALID_COMMITTEE = 7009,
  ERR_INVALID_PARAMS = 7010,
  ERR_UNSAFE_PARAMS = 7011,        /* p <= C / ((1 - r)(R + S)): sampling cannot deter cheating */
  ERR_WRONG_MINT = 7012,
  ERR_WRONG_VAULT = 7013,
  ERR_WRONG_TOKEN_PROGRAM = 7014,
  ERR_WRONG_SYSTEM_PROGRAM = 7015,
  ERR_NOT_OWNER = 7016,            /* only the node's owner key may do this */
  ERR_NOT_NODE_AUTHORITY = 7017,   /* neither the node's owner nor its operator */
  ERR_WRONG_CONFIG = 7018,         /* account belongs to another network config */
  ERR_INVALID_TOKEN_ACCOUNT = 7019,
  ERR_STAKE_BELOW_MINIMUM = 7020,
  ERR_ARITHMETIC_OVERFLOW = 7021,
  ERR_INSUFFICIENT_STAKE = 7022,
  ERR_NOTHING_TO_WITHDRAW = 7023,
  ERR_UNBONDING_NOT_FINISHED = 7024,
  ERR_INVALID_SPECIALIZATIONS = 7025,
  ERR_NODE_SLASHED = 7026,
  ERR_RENT = 7027,                 /* rent sysvar unreadable or unusual */
  ERR_CLOCK = 7028,
};

/* ---- accounts ---- */
#define KIND_CONFIG 1
#define KIND_NODE 2
#define LAYOUT_V1 1

#define MAX_COMMITTEE 7
#define MAX_SPECIALIZATIONS 16

/* fixed-point units: ppm = parts per million (1_000_000 = 1), bps = basis points (10_000 = 1) */
#define PPM 1000000ULL
#define BPS 10000ULL

typedef struct {
  u64 min_stake;            /* stake-mint base units */
  u64 unbonding_delay;      /* seconds; must exceed challenge_delay (stake stays slashable meanwhile) */
  u64 challenge_delay;      /* seconds between a proven fraud and the slash moving funds */
  u64 min_fee;              /* stake-mint base units per task */
  u32 sampling_ppm;         /* p: probability that a task is re-executed */
  u32 validator_reward_bps; /* R: a verification pays R x the task payment (12_000 = 1.2) */
  u32 slash_bps;            /* fraction of stake slashed on proven fraud (10_000 = 100%) */
  u32 bounty_bps;           /* share of a slash paid to the proving validator, at most 5_000 */
  u32 compute_cost_bps;     /* C: cost of computing a task, in units of its payment */
  u32 collusion_bps;        /* r: assumed fraction of colluding validators */
  u32 min_stake_ratio_bps;  /* a node's stake must stay >= this x its payments in flight */
  u32 reserved;             /* 0 */
} Params;
_Static_assert(sizeof(Params) == 64, "Params layout");

/* PDA ["config", genesis_hash] */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 committee_len;
  u8 threshold;        /* ceil(2n/3) */
  u8 mint_decimals;
  u8 reserved[2];
  u8 genesis_hash[32];
  SolPubkey stake_mint;
  SolPubkey treasury;  /* token account of the stake mint receiving the non-bounty part of slashes */
  u64 committee_epoch;
  u64 node_count;
  Params params;
  SolPubkey committee[MAX_COMMITTEE];
} Config;
_Static_assert(sizeof(Config) == 408, "Config layout");

#define NODE_ACTIVE 0
#define NODE_SLASHED 1

/* PDA ["node", config, operator]. Its stake sits in the token account at PDA ["vault", node],
 * whose token authority is the node account. */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 vault_bump;
  u8 status;
  u8 spec_count;
  u8 reserved[2];
  SolPubkey config;
  SolPubkey owner;     /* funds, unbonds, withdraws */
  SolPubkey operator_; /* the daemon's identity: acts for the node, never moves stake */
  SolPubkey vault;
  u64 stake;            /* bonded: counts for assignments */
  u64 unbonding;        /* leaving: no longer counts, still slashable until withdrawn */
  i64 unbonding_ends_at; /* unix seconds */
  u64 payments_in_flight;
  u64 registered_slot;
  u32 capacity;
  u32 reserved2;
  u8 specializations[MAX_SPECIALIZATIONS][32];
} Node;
_Static_assert(sizeof(Node) == 696, "Node layout");

/* ---- instruction arguments (after the 8-byte header) ---- */
typedef struct {
  u8 genesis_hash[32];
  Params params;
  u8 committee_len;
  u8 reserved[7];
  /* followed by committee_len x 32-byte member keys */
} InitConfigArgs;
_Static_assert(sizeof(InitConfigArgs) == 104, "InitConfigArgs layout");

typedef struct {
  u64 amount;
  u32 capacity;
  u8 spec_count;
  u8 reserved[3];
  /* followed by spec_count x 32-byte task ids */
} RegisterNodeArgs;
_Static_assert(sizeof(RegisterNodeArgs) == 16, "RegisterNodeArgs layout");

typedef struct {
  u64 amount;
} AmountArgs;

typedef struct {
  u32 capacity;
  u32 reserved;
} CapacityArgs;

/* ---- well-known programs ---- */
extern const SolPubkey SYSTEM_PROGRAM_ID;
extern const SolPubkey TOKEN_PROGRAM_ID;

/* ---- SPL Token account layouts ---- */
#define TOKEN_ACCOUNT_SIZE 165
#define TOKEN_MINT_SIZE 82
#define TOKEN_ACCOUNT_MINT 0
#define TOKEN_ACCOUNT_OWNER 32
#define TOKEN_ACCOUNT_AMOUNT 64
#define TOKEN_ACCOUNT_STATE 108
#define TOKEN_MINT_DECIMALS 44
#define TOKEN_MINT_INITIALIZED 45

/* ---- shared helpers (util.c) ---- */
typedef struct {
  const SolPubkey *program_id;
  SolAccountInfo *accounts;
  u64 accounts_len;
  const u8 *args;     /* instruction data after the header */
  u64 args_len;
} Context;

u64 fail(u64 code, const char *why, u64 why_len);
#define FAIL(code, literal) fail((code), (literal), sizeof(literal) - 1)
#define TRY(expr) do { u64 _e = (expr); if (_e != 0) return _e; } while (0)

u64 require_signer(const SolAccountInfo *a);
u64 require_writable(const SolAccountInfo *a);
u64 require_program_account(const Context *ctx, const SolAccountInfo *a, u8 kind, u64 size);
u64 require_token_program(const SolAccountInfo *a);
u64 require_system_program(const SolAccountInfo *a);
/* A token account of `mint`, owned by the SPL Token program and initialized. */
u64 require_token_account(const SolAccountInfo *a, const SolPubkey *mint);
u64 find_pda(const Context *ctx, const SolSignerSeed *seeds, u64 n, const SolAccountInfo *expected, u8 *bump);
u64 read_clock(SolClock *clock);
/* Creates `target` (a PDA signed for by `seeds`) with `space` bytes, owned by `owner`, paid by
 * `payer`; copes with lamports sent to the address beforehand. */
u64 create_pda_account(SolAccountInfo *payer, SolAccountInfo *target, u64 space, const SolPubkey *owner,
                       const SolSignerSeeds *seeds);
u64 token_transfer(SolAccountInfo *from, SolAccountInfo *to, SolAccountInfo *authority, u64 amount,
                   const SolSignerSeeds *seeds);
u64 token_initialize_account(SolAccountInfo *account, SolAccountInfo *mint, const SolPubkey *owner);

/* ---- instruction handlers ---- */
u64 initialize_config(const Context *ctx);
u64 register_node(const Context *ctx);
u64 add_stake(const Context *ctx);
u64 update_capacity(const Context *ctx);
u64 unbond(const Context *ctx);
u64 withdraw(const Context *ctx);

#endif
