/*
 * A minimal Solana C ABI for SBPFv0 programs: fixed-width types, the entrypoint's input
 * deserialization, the account and instruction structures that cross-program invocation expects, and
 * the syscalls this program uses. Written for BitFlow; the layouts are the runtime's ABI.
 *
 * Rules for code that includes this header (SBPFv0, clang-19 -mcpu=v2):
 * - no writable globals (the loader rejects .data/.bss); constants are fine;
 * - no floating point, no 128-bit arithmetic (they become library calls that do not exist);
 * - variable-size copies go through sol_memcpy_ (see sol_copy);
 * - at most 5 arguments per function (BPF passes arguments in r1..r5 only).
 */
#ifndef BITFLOW_SOL_H
#define BITFLOW_SOL_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int i32;
typedef signed long long i64;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)
#define U64_MAX 0xffffffffffffffffULL

_Static_assert(sizeof(void *) == 8, "64-bit target");
_Static_assert(sizeof(u64) == 8, "u64");

typedef struct {
  u8 x[32];
} SolPubkey;

/* An account as the program sees it; pointers go into the input buffer, so writes through
 * `lamports` and `data` change the account. Same layout the runtime reads in sol_invoke_signed_c. */
typedef struct {
  SolPubkey *key;
  u64 *lamports;
  u64 data_len;
  u8 *data;
  SolPubkey *owner;
  u64 rent_epoch;
  bool is_signer;
  bool is_writable;
  bool executable;
} SolAccountInfo;

typedef struct {
  SolPubkey *pubkey;
  bool is_writable;
  bool is_signer;
} SolAccountMeta;

typedef struct {
  SolPubkey *program_id;
  SolAccountMeta *accounts;
  u64 account_len;
  u8 *data;
  u64 data_len;
} SolInstruction;

typedef struct {
  const u8 *addr;
  u64 len;
} SolSignerSeed;

typedef struct {
  const SolSignerSeed *addr;
  u64 len;
} SolSignerSeeds;

typedef struct {
  u64 slot;
  i64 epoch_start_timestamp;
  u64 epoch;
  u64 leader_schedule_epoch;
  i64 unix_timestamp;
} SolClock;

typedef struct {
  u64 lamports_per_byte_year;
  u64 exemption_threshold_bits; /* an f64, read as bits: no floating point on SBPFv0 */
  u8 burn_percent;
} SolRent;

/* ---- syscalls (resolved by the loader by the murmur3 hash of their names) ---- */
void sol_log_(const char *message, u64 len);
void sol_log_64_(u64 a, u64 b, u64 c, u64 d, u64 e);
void sol_log_pubkey(const SolPubkey *key);
u64 sol_memcpy_(void *dst, const void *src, u64 n);
u64 sol_memset_(void *dst, u8 value, u64 n);
u64 sol_memcmp_(const void *a, const void *b, u64 n, i32 *result);
u64 sol_create_program_address(const SolSignerSeed *seeds, u64 seeds_len, const SolPubkey *program_id, SolPubkey *out);
u64 sol_try_find_program_address(const SolSignerSeed *seeds, u64 seeds_len, const SolPubkey *program_id, SolPubkey *out, u8 *bump);
u64 sol_invoke_signed_c(const SolInstruction *instruction, const SolAccountInfo *account_infos, u64 account_infos_len,
                        const SolSignerSeeds *signers_seeds, u64 signers_seeds_len);
u64 sol_get_clock_sysvar(SolClock *out);
u64 sol_get_rent_sysvar(SolRent *out);
/* SIMD-0127: reads `length` bytes at `offset` of a sysvar (SlotHashes included) without its account */
u64 sol_get_sysvar(const u8 *sysvar_id, u8 *out, u64 offset, u64 length);
/* SHA-256 over the concatenation of `n` byte slices (same layout as SolSignerSeed) */
u64 sol_sha256(const SolSignerSeed *slices, u64 n, u8 *out);

#define SOL_LOG(literal) sol_log_((literal), sizeof(literal) - 1)

/* ---- entrypoint input (the aligned serialization of BPF Loader 2 / Upgradeable) ---- */
#define SOL_MAX_PERMITTED_DATA_INCREASE (10 * 1024)
#define SOL_NON_DUP_MARKER 0xff

typedef struct {
  SolAccountInfo *accounts; /* caller-provided array */
  u64 accounts_len;         /* number of accounts in the transaction instruction */
  const u8 *data;
  u64 data_len;
  const SolPubkey *program_id;
} SolParameters;

/* Fills params from the input buffer. Returns false if the instruction has more than `capacity`
 * accounts. */
bool sol_deserialize(const u8 *input, SolParameters *params, u64 capacity);

/* ---- small helpers ---- */
static inline void sol_copy(void *dst, const void *src, u64 n) { sol_memcpy_(dst, src, n); }
static inline void sol_zero(void *dst, u64 n) { sol_memset_(dst, 0, n); }

static inline bool key_eq(const SolPubkey *a, const SolPubkey *b) {
  const u64 *x = (const u64 *)a->x;
  const u64 *y = (const u64 *)b->x;
  return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Compares 32-byte values that may be unaligned. */
static inline bool bytes32_eq(const u8 *a, const u8 *b) {
  i32 r = 1;
  sol_memcmp_(a, b, 32, &r);
  return r == 0;
}

static inline bool bytes32_is_zero(const u8 *a) {
  u8 acc = 0;
  for (int i = 0; i < 32; i++) acc |= a[i];
  return acc == 0;
}

static inline bool add_u64(u64 a, u64 b, u64 *out) {
  if (a > U64_MAX - b) return false;
  *out = a + b;
  return true;
}

/* Checked multiplication by 32-bit halves: the obvious `b > U64_MAX / a` test is turned by LLVM into
 * a 128-bit multiply (__multi3), which does not exist on SBPF. */
static inline bool mul_u64(u64 a, u64 b, u64 *out) {
  u64 ah = a >> 32, al = a & 0xffffffffULL, bh = b >> 32, bl = b & 0xffffffffULL;
  if (ah != 0 && bh != 0) return false;
  u64 cross = ah * bl + al * bh; /* one term is zero, the other fits */
  if (cross >> 32) return false;
  return add_u64(cross << 32, al * bl, out);
}

#endif
