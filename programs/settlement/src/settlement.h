/*
 * BitFlow settlement program: account layouts, instruction layouts and error codes.
 * Every layout here is mirrored byte for byte by programs/client/settlement.ts (canonical messages by
 * programs/client/messages.ts); change both together
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
  IX_CHANGE_COMMITTEE = 6,
  IX_OPEN_EXECUTION = 7,
  IX_CANCEL_TASKS = 8,
  IX_ASSIGN = 9,
  IX_COMMIT = 10,
  IX_DECIDE_SAMPLING = 11,
  IX_REVEAL = 12,
  IX_EXPIRE = 13,
  IX_PAY = 14,
  IX_RECORD_SLASH = 15,
  IX_EXECUTE_SLASH = 16,
  IX_TOP_UP = 17,
  IX_REFRESH_SEED = 18,
  IX_CLOSE_EXECUTION = 19,
};

/* a seed whose slot is older than this many slots past trigger + K may be refreshed (SlotHashes keeps 512) */
#define SEED_STALE_SLOTS 400

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
  ERR_WRONG_SYSVAR = 7029,         /* not the real instructions sysvar */
  ERR_ED25519_OFFSETS = 7030,      /* an Ed25519 signature's offsets leave its own instruction's data */
  ERR_SIGNED_MESSAGE_MISMATCH = 7031, /* a committee signature is not over the canonical digest */
  ERR_NOT_COMMITTEE_MEMBER = 7032, /* signer is not a member of the current committee epoch */
  ERR_DUPLICATE_SIGNER = 7033,     /* one member's signature counted twice */
  ERR_QUORUM_NOT_REACHED = 7034,   /* fewer than threshold distinct members signed */
  ERR_EXPIRED = 7035,              /* the signed message's expiry slot has passed */
  ERR_FEE_BELOW_MINIMUM = 7036,
  ERR_INVALID_TASKS = 7037,        /* execution task list empty, too long, zero or repeated id */
  ERR_WRONG_EXECUTION = 7038,      /* account belongs to another execution, task or node */
  ERR_TASK_ALREADY_ASSIGNED = 7039, /* cancel asked to refund a task that was assigned */
  ERR_TASK_CANCELLED = 7040,
  ERR_NODE_NOT_SPECIALIZED = 7041,
  ERR_NODE_BLACKLISTED = 7042,
  ERR_STAKE_TOO_LOW_FOR_PAYMENTS = 7043, /* stake < min ratio x payments in flight */
  ERR_ASSIGNMENT_EXISTS = 7044,    /* replayed assignment */
  ERR_TASK_BUSY = 7045,            /* the task has a live attempt (or is settled) */
  ERR_WRONG_ATTEMPT = 7046,        /* attempt is not the task's next attempt */
  ERR_SEED_UNAVAILABLE = 7047,     /* the seed slot is not (yet, or any longer) in SlotHashes */
  ERR_ESCROW_INSUFFICIENT = 7048,
  ERR_NOT_OPERATOR = 7049,         /* signer is not the assigned node's operator */
  ERR_WRONG_STATE = 7050,          /* not allowed in the task's or assignment's current state */
  ERR_DEADLINE_PASSED = 7051,
  ERR_DEADLINE_NOT_PASSED = 7052,
  ERR_COMMITMENT_MISMATCH = 7053,  /* reveal does not open the commitment */
  ERR_ALREADY_PAID = 7054,
  ERR_NOT_PAYABLE = 7055,          /* superseded, unverified or failed assignment */
  ERR_ALREADY_SLASHED = 7056,      /* this (execution, task, attempt, accused) was slashed */
  ERR_NO_FRAUD_EVIDENCE = 7057,    /* commitments/reveals missing or outputs agree */
  ERR_CHALLENGE_PENDING = 7058,    /* the challenge delay has not passed */
  ERR_NOT_REQUESTER = 7059,
  ERR_WRONG_RECIPIENT = 7060,      /* payout or bounty account not owned by the entitled key */
  ERR_COPIED_COMMITMENT = 7061,    /* verifier commitment equals the asserter's */
  ERR_INVALID_BLACKLIST = 7062,    /* unsorted, repeated, too long, or verification without the asserter */
  ERR_PAYMENTS_RESERVED = 7063,    /* close: live or unpaid assignments still hold part of the escrow */
};

/* ---- accounts ---- */
#define KIND_CONFIG 1
#define KIND_NODE 2
#define KIND_EXECUTION 3
#define KIND_TASK 4
#define KIND_ASSIGNMENT 5
#define KIND_SLASH 6
#define LAYOUT_V1 1

#define MAX_COMMITTEE 7
#define MAX_SPECIALIZATIONS 16
#define MAX_TASKS 16
#define MAX_BLACKLIST 8
#define NO_ATTEMPT 0xffffffffU

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
  u32 seed_delay_slots;     /* K: seeds and sampling use the SlotHashes entry K slots after their event */
  u32 deadline_base_secs;   /* assignment deadline = base + per_100cu x ceil(compute units / 100) */
  u32 deadline_per_100cu_secs;
  u32 unverifiable_pay_bps; /* an unverifiable attempt (no second node can re-execute it) is paid this x the price, < 1 */
  u32 reserved;             /* 0 */
} Params;
_Static_assert(sizeof(Params) == 80, "Params layout");

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
_Static_assert(sizeof(Config) == 424, "Config layout");

#define NODE_ACTIVE 0
#define NODE_SLASHED 1         /* a slash is recorded: frozen until it is executed */
#define NODE_SLASH_EXECUTED 2  /* slashed; any remainder is withdrawable, nothing else */

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

/* execution task flags */
#define TASK_ASSIGNED 1   /* a primary attempt was assigned at least once: not refundable */
#define TASK_CANCELLED 2  /* refunded: never assignable */
#define TASK_PAID 4       /* the primary payment was made */

typedef struct {
  u8 task_id[32];
  u64 price;          /* primary payment, stake-mint base units */
  u32 compute_units;
  u32 flags;
} ExecTask;
_Static_assert(sizeof(ExecTask) == 48, "ExecTask layout");

/* PDA ["execution", config, execution_id]. Its escrow sits in the token account at PDA
 * ["escrow", execution], whose token authority is the execution account. */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 vault_bump;
  u8 task_count;
  u8 reserved[3];
  SolPubkey config;
  SolPubkey requester;
  SolPubkey refund_to;   /* requester's token account: cancel refunds go only here */
  SolPubkey vault;
  u8 execution_id[32];
  u64 request_slot;      /* Clock slot of the escrow */
  u64 deposited;
  u64 balance;           /* what the vault holds for this execution */
  u64 reserved_amount;   /* payments of live assignments, not refundable */
  /* Clock slot of the latest event that made tasks ready: the request, then each task becoming
   * VERIFIED. Seeds of first attempts use ready_slot + K, so a task that waited for its dependencies
   * still gets a seed nobody knew when it became ready, and one recent enough for SlotHashes. */
  u64 ready_slot;
  ExecTask tasks[MAX_TASKS];
} Execution;
_Static_assert(sizeof(Execution) == 208 + 48 * MAX_TASKS, "Execution layout");

/* task states (DESIGN.md "Selection, assignment, execution") */
#define TS_ASSIGNED 1
#define TS_COMPLETED 2             /* asserter committed; sampling not decided or not sampled yet revealed */
#define TS_PENDING_VERIFICATION 3
#define TS_VERIFIED 4
#define TS_VERIFICATION_FAILED 5
#define TS_FAILED 6

#define SAMPLING_UNDECIDED 0
#define SAMPLING_SAMPLED 1
#define SAMPLING_SKIPPED 2
#define SAMPLING_UNVERIFIABLE 3  /* the live primary attempt is unverifiable: never sampled */

/* PDA ["task", execution, task_id]: tracks the live attempt of one task of one execution. */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 status;
  u8 sampling;
  u8 task_index;
  u8 reserved[2];
  SolPubkey execution;
  u8 task_id[32];
  SolPubkey primary_node; /* node account of the live (or last) primary attempt */
  u32 next_attempt;      /* the attempt number the next assignment must use */
  u32 primary_attempt;   /* the live (or last) primary attempt; NO_ATTEMPT before the first */
  u32 verifier_attempt;  /* the live verification attempt; NO_ATTEMPT if none */
  u32 reserved2;
  u64 trigger_slot;      /* slot of the event the next seed derives from (request, commitment, failure) */
} TaskState;
_Static_assert(sizeof(TaskState) == 128, "TaskState layout");

#define ROLE_PRIMARY 0
#define ROLE_VERIFICATION 1
/* a primary attempt the committee found nobody else able to re-execute (a dataset:// input that no
 * second eligible validator holds): never sampled, so never slashed, and paid unverifiable_pay_bps */
#define ROLE_UNVERIFIABLE 2
#define IS_PRIMARY(role) ((role) != ROLE_VERIFICATION)

#define AS_ASSIGNED 1
#define AS_COMMITTED 2
#define AS_REVEALED 3
#define AS_FAILED 4

#define VERDICT_NONE 0
#define VERDICT_MATCH 1
#define VERDICT_MISMATCH 2

/* PDA ["assignment", execution, task_id, attempt (u32 LE)]. */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 role;
  u8 status;
  u8 verdict;     /* verification assignments: the verifier's comparison */
  u8 paid;
  u8 resolved;    /* verification assignments: the result is recorded (both parties revealed) */
  SolPubkey execution;
  u8 task_id[32];
  SolPubkey node;  /* node account */
  u32 attempt;
  u32 verifies;    /* verification: the primary attempt it checks; primary: NO_ATTEMPT */
  u64 payment;
  u64 assigned_slot;
  i64 deadline;    /* unix seconds: commit before it */
  u64 commit_slot;
  u8 commitment[32];  /* H(outputRoot || salt) */
  u8 output_root[32]; /* revealed */
  u8 salt[32];
  u8 seed[32];
} Assignment;
_Static_assert(sizeof(Assignment) == 272, "Assignment layout");

#define SLASH_RECORDED 1
#define SLASH_EXECUTED 2

/* PDA ["slash", execution, task_id, attempt (u32 LE), accused node]: exists once per fraud. */
typedef struct {
  u8 kind;
  u8 layout;
  u8 bump;
  u8 status;
  u32 attempt;
  SolPubkey config;
  SolPubkey execution;
  u8 task_id[32];
  SolPubkey accused;   /* node account */
  SolPubkey bounty_to; /* token account of the proving party's owner */
  i64 recorded_at;     /* unix seconds */
  i64 executable_at;   /* recorded_at + challenge_delay */
  u64 amount;          /* set when executed */
  u64 bounty;
} Slash;
_Static_assert(sizeof(Slash) == 200, "Slash layout");

/* ---- instruction arguments (after the 8-byte header) ---- */
typedef struct {
  u8 genesis_hash[32];
  Params params;
  u8 committee_len;
  u8 reserved[7];
  /* followed by committee_len x 32-byte member keys */
} InitConfigArgs;
_Static_assert(sizeof(InitConfigArgs) == 120, "InitConfigArgs layout");

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

typedef struct {
  u64 expiry_slot;
  u8 committee_len;
  u8 reserved[7];
  /* followed by committee_len x 32-byte member keys */
} ChangeCommitteeArgs;

typedef struct {
  u8 execution_id[32];
  u8 task_count;
  u8 reserved[7];
  /* followed by task_count x ExecTaskArg */
} OpenExecutionArgs;

typedef struct {
  u8 task_id[32];
  u64 price;
  u32 compute_units;
  u32 reserved;
} ExecTaskArg;

typedef struct {
  u32 task_mask;  /* bit i: refund task i */
  u32 reserved;
} CancelArgs;

typedef struct {
  u8 task_id[32];
  u32 attempt;
  u8 role;
  u8 blacklist_len;
  u8 reserved[2];
  u64 liveness_round;
  u64 expiry_slot;
  /* followed by blacklist_len x 32-byte operator keys, strictly ascending */
} AssignArgs;
_Static_assert(sizeof(AssignArgs) == 56, "AssignArgs layout");

typedef struct {
  u8 commitment[32];
} CommitArgs;

typedef struct {
  u8 output_root[32];
  u8 salt[32];
  u8 verdict;      /* verification assignments: VERDICT_MATCH or VERDICT_MISMATCH; primary: 0 */
  u8 reserved[7];
} RevealArgs;

typedef struct {
  u64 expiry_slot;
} SlashArgs;

/* ---- well-known programs ---- */
extern const SolPubkey SYSTEM_PROGRAM_ID;
extern const SolPubkey TOKEN_PROGRAM_ID;
extern const SolPubkey ED25519_PROGRAM_ID;
extern const SolPubkey INSTRUCTIONS_SYSVAR_ID;
extern const SolPubkey SLOT_HASHES_SYSVAR_ID;

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

/* stored-bump PDA check (cheaper than find_pda for accounts that already exist) */
u64 check_pda(const Context *ctx, const SolSignerSeed *seeds, u64 n, const SolAccountInfo *expected);
/* a fresh account for a PDA: owned by the System program and empty; ERR_ALREADY_INITIALIZED otherwise */
u64 require_uninitialized(const Context *ctx, const SolAccountInfo *a, u64 exists_code);
/* a * num / den, rounded down (or up), without 128-bit arithmetic; false on overflow.
 * Requires den, num < 2^32. */
bool mul_div(u64 a, u64 num, u64 den, bool round_up, u64 *out);
bool is_zero(const u8 *p, u64 n);

/* ---- canonical messages, digests (message.c); mirrored by programs/client/messages.ts ---- */
void sha256_concat(const SolSignerSeed *parts, u64 n, u8 out[32]);
void blacklist_hash(const u8 *keys, u64 n, u8 out[32]);
typedef struct {
  const u8 *execution_id;
  const u8 *task_id;
  u32 attempt;
  u8 role;
  const u8 *node_operator;
  const u8 *blacklist_hash;
  const u8 *seed;
  u64 liveness_round;
  u64 compute_units;
  u64 expiry_slot;
} AssignmentFields;
void assignment_digest(const Context *ctx, const Config *c, const AssignmentFields *f, u8 out[32]);
/* members follow args in the instruction data */
void committee_digest(const Context *ctx, const Config *c, const ChangeCommitteeArgs *args, const u8 *members, u8 out[32]);
typedef struct {
  const u8 *execution_id;
  const u8 *task_id;
  u32 attempt;
  const u8 *accused_operator;
  const Assignment *asserter;
  const Assignment *verifier;
  const u8 *bounty_to;
  u64 expiry_slot;
} SlashFields;
void slash_digest(const Context *ctx, const Config *c, const SlashFields *f, u8 out[32]);
void commitment_of(const u8 *output_root, const u8 *salt, u8 out[32]);
/* seed of an attempt: H("bitflow/seed/v1" || genesis || execution id || task id || attempt || seed slot || slot hash) */
typedef struct {
  const u8 *execution_id;
  const u8 *task_id;
  u32 attempt;
  u64 slot;
  const u8 *slot_hash;
} DrawFields;
void seed_of(const Config *c, const DrawFields *f, u8 out[32]);
/* sampling draw: H("bitflow/sample/v1" || genesis || execution id || task id || attempt || decision
 * slot || slot hash || commitment); sampled iff its first 8 bytes (LE) mod 1e6 < p (ppm) */
bool sampled_by(const Config *c, const DrawFields *f, const u8 *commitment);

/* ---- committee quorum over the Ed25519 instructions of this transaction (quorum.c) ---- */
u64 verify_quorum(const Config *c, const SolAccountInfo *instructions_sysvar, const u8 digest[32]);

/* ---- SlotHashes (slothash.c) ---- */
/* The SlotHashes entry of `slot`, which must be in the past and still recorded. */
u64 slot_hash(u64 slot, u64 current_slot, u8 out[32]);

/* ---- loaders (accounts.c) ---- */
u64 load_config(const Context *ctx, SolAccountInfo *a, Config **out);
u64 load_node_of(const Context *ctx, SolAccountInfo *a, const SolPubkey *config, Node **out);
u64 load_execution(const Context *ctx, SolAccountInfo *a, const SolPubkey *config, Execution **out);
u64 load_task(const Context *ctx, SolAccountInfo *a, const SolAccountInfo *execution, TaskState **out);
u64 load_assignment(const Context *ctx, SolAccountInfo *a, const SolAccountInfo *execution, Assignment **out);
/* A verification pays R x the task price (rounded down). */
bool verification_payment(const Params *p, u64 price, u64 *out);
/* What a task puts in escrow: price + p x R x price (expected verification cost, rounded up). */
bool task_share(const Params *p, u64 price, u64 *out);
/* Releases a live assignment's payment from the node's and the execution's in-flight totals. */
void release_payment(Execution *e, Node *node, const Assignment *as);
void execution_signer_seeds(const Execution *e, SolSignerSeed seeds[4], const u8 *bump);
void node_signer_seeds_of(const Node *node, SolSignerSeed seeds[4], const u8 *bump);

/* ---- instruction handlers ---- */
u64 initialize_config(const Context *ctx);
u64 register_node(const Context *ctx);
u64 add_stake(const Context *ctx);
u64 update_capacity(const Context *ctx);
u64 unbond(const Context *ctx);
u64 withdraw(const Context *ctx);
u64 change_committee(const Context *ctx);
u64 open_execution(const Context *ctx);
u64 cancel_tasks(const Context *ctx);
u64 top_up(const Context *ctx);
u64 refresh_seed(const Context *ctx);
u64 close_execution(const Context *ctx);
u64 assign(const Context *ctx);
u64 commit(const Context *ctx);
u64 decide_sampling(const Context *ctx);
u64 reveal(const Context *ctx);
u64 expire(const Context *ctx);
u64 pay(const Context *ctx);
u64 record_slash(const Context *ctx);
u64 execute_slash(const Context *ctx);

#endif
