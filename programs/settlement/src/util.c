/* Account checks, program-derived addresses, sysvars and cross-program invocations. */
#include "settlement.h"

const SolPubkey SYSTEM_PROGRAM_ID = {{0}};
/* TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA */
const SolPubkey TOKEN_PROGRAM_ID = {{0x06, 0xdd, 0xf6, 0xe1, 0xd7, 0x65, 0xa1, 0x93, 0xd9, 0xcb, 0xe1,
                                     0x46, 0xce, 0xeb, 0x79, 0xac, 0x1c, 0xb4, 0x85, 0xed, 0x5f, 0x5b,
                                     0x37, 0x91, 0x3a, 0x8c, 0xf5, 0x85, 0x7e, 0xff, 0x00, 0xa9}};

/* Logs why an instruction failed, then returns the error code (which the runtime reports as
 * InstructionError::Custom(code)). */
u64 fail(u64 code, const char *why, u64 why_len) {
  sol_log_(why, why_len);
  sol_log_64_(0xb17f1000ULL, code, 0, 0, 0);
  return code;
}

u64 require_signer(const SolAccountInfo *a) {
  if (!a->is_signer) return FAIL(ERR_MISSING_SIGNER, "a required signature is missing");
  return 0;
}

u64 require_writable(const SolAccountInfo *a) {
  if (!a->is_writable) return FAIL(ERR_NOT_WRITABLE, "an account that must be writable is not");
  return 0;
}

u64 require_program_account(const Context *ctx, const SolAccountInfo *a, u8 kind, u64 size) {
  if (!key_eq(a->owner, ctx->program_id)) return FAIL(ERR_WRONG_ACCOUNT_OWNER, "account is not owned by the settlement program");
  if (a->data_len < size || a->data[0] != kind || a->data[1] != LAYOUT_V1) {
    return FAIL(ERR_WRONG_ACCOUNT_KIND, "account is not of the expected kind");
  }
  return 0;
}

u64 require_token_program(const SolAccountInfo *a) {
  if (!key_eq(a->key, &TOKEN_PROGRAM_ID)) return FAIL(ERR_WRONG_TOKEN_PROGRAM, "not the SPL Token program");
  return 0;
}

u64 require_system_program(const SolAccountInfo *a) {
  if (!key_eq(a->key, &SYSTEM_PROGRAM_ID)) return FAIL(ERR_WRONG_SYSTEM_PROGRAM, "not the System program");
  return 0;
}

u64 require_token_account(const SolAccountInfo *a, const SolPubkey *mint) {
  if (!key_eq(a->owner, &TOKEN_PROGRAM_ID)) return FAIL(ERR_WRONG_ACCOUNT_OWNER, "token account is not owned by the SPL Token program");
  if (a->data_len != TOKEN_ACCOUNT_SIZE || a->data[TOKEN_ACCOUNT_STATE] == 0) {
    return FAIL(ERR_INVALID_TOKEN_ACCOUNT, "not an initialized SPL token account");
  }
  if (!bytes32_eq(a->data + TOKEN_ACCOUNT_MINT, mint->x)) return FAIL(ERR_WRONG_MINT, "token account is not of the stake mint");
  return 0;
}

u64 find_pda(const Context *ctx, const SolSignerSeed *seeds, u64 n, const SolAccountInfo *expected, u8 *bump) {
  SolPubkey derived;
  if (sol_try_find_program_address(seeds, n, ctx->program_id, &derived, bump) != 0) {
    return FAIL(ERR_WRONG_PDA, "no program address for these seeds");
  }
  if (!key_eq(&derived, expected->key)) return FAIL(ERR_WRONG_PDA, "account is not the canonical program-derived address");
  return 0;
}

u64 read_clock(SolClock *clock) {
  if (sol_get_clock_sysvar(clock) != 0) return FAIL(ERR_CLOCK, "clock sysvar unavailable");
  return 0;
}

/* Rent-exempt minimum: (128 + space) * lamports_per_byte_year * exemption_threshold. The threshold
 * is an f64; it is decoded here into mantissa and exponent so that no floating point is needed. */
static u64 rent_exempt_minimum(u64 space, u64 *out) {
  SolRent rent;
  if (sol_get_rent_sysvar(&rent) != 0) return FAIL(ERR_RENT, "rent sysvar unavailable");
  u64 base;
  if (!mul_u64(128 + space, rent.lamports_per_byte_year, &base)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "rent overflow");
  u64 bits = rent.exemption_threshold_bits;
  if (bits >> 63) return FAIL(ERR_RENT, "negative rent exemption threshold");
  u64 exp = (bits >> 52) & 0x7ff;
  if (exp == 0) { *out = 0; return 0; }
  if (exp == 0x7ff) return FAIL(ERR_RENT, "rent exemption threshold is not finite");
  u64 mant = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
  i64 e = (i64)exp - 1075;
  while ((mant & 1) == 0) { mant >>= 1; e++; }
  u64 value;
  if (!mul_u64(base, mant, &value)) return FAIL(ERR_RENT, "rent exemption threshold too precise");
  if (e >= 0) {
    if (e >= 64 || value > (U64_MAX >> e)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "rent overflow");
    value <<= e;
  } else {
    value = -e >= 64 ? 0 : value >> (-e);
  }
  *out = value;
  return 0;
}

static u64 system_invoke(u8 *data, u64 data_len, SolAccountMeta *metas, u64 n_metas, SolAccountInfo *infos,
                         const SolSignerSeeds *seeds) {
  SolInstruction ix;
  ix.program_id = (SolPubkey *)&SYSTEM_PROGRAM_ID;
  ix.accounts = metas;
  ix.account_len = n_metas;
  ix.data = data;
  ix.data_len = data_len;
  return sol_invoke_signed_c(&ix, infos, n_metas, seeds, seeds == NULL ? 0 : 1);
}

static void put_u32(u8 *p, u32 v) { for (int i = 0; i < 4; i++) p[i] = (u8)(v >> (8 * i)); }
static void put_u64(u8 *p, u64 v) { for (int i = 0; i < 8; i++) p[i] = (u8)(v >> (8 * i)); }

/* A CPI that resizes an account updates the length serialized just before its data, but not the
 * copy in our SolAccountInfo; a stale length would later look like a resize of an account we do not
 * own. */
static void refresh_data_len(SolAccountInfo *a) { a->data_len = *(const u64 *)(a->data - sizeof(u64)); }

u64 create_pda_account(SolAccountInfo *payer, SolAccountInfo *target, u64 space, const SolPubkey *owner,
                       const SolSignerSeeds *seeds) {
  u64 needed;
  TRY(rent_exempt_minimum(space, &needed));
  u64 have = *target->lamports;
  SolAccountMeta pair[2] = {{payer->key, true, true}, {target->key, true, true}};
  SolAccountInfo pair_infos[2] = {*payer, *target};
  if (have == 0) {
    u8 data[52]; /* CreateAccount { lamports, space, owner } */
    put_u32(data, 0);
    put_u64(data + 4, needed);
    put_u64(data + 12, space);
    sol_copy(data + 20, owner->x, 32);
    TRY(system_invoke(data, sizeof data, pair, 2, pair_infos, seeds));
    refresh_data_len(target);
    return 0;
  }
  /* Someone sent lamports to the address first: top up, then allocate and assign. */
  if (have < needed) {
    u8 data[12]; /* Transfer { lamports } */
    put_u32(data, 2);
    put_u64(data + 4, needed - have);
    SolAccountMeta metas[2] = {{payer->key, true, true}, {target->key, true, false}};
    TRY(system_invoke(data, sizeof data, metas, 2, pair_infos, NULL));
  }
  SolAccountMeta self[1] = {{target->key, true, true}};
  SolAccountInfo self_info[1] = {*target};
  u8 alloc[12]; /* Allocate { space } */
  put_u32(alloc, 8);
  put_u64(alloc + 4, space);
  TRY(system_invoke(alloc, sizeof alloc, self, 1, self_info, seeds));
  u8 assign[36]; /* Assign { owner } */
  put_u32(assign, 1);
  sol_copy(assign + 4, owner->x, 32);
  TRY(system_invoke(assign, sizeof assign, self, 1, self_info, seeds));
  refresh_data_len(target);
  return 0;
}

u64 token_transfer(SolAccountInfo *from, SolAccountInfo *to, SolAccountInfo *authority, u64 amount,
                   const SolSignerSeeds *seeds) {
  u8 data[9]; /* Transfer { amount } */
  data[0] = 3;
  put_u64(data + 1, amount);
  SolAccountMeta metas[3] = {{from->key, true, false}, {to->key, true, false}, {authority->key, false, true}};
  SolAccountInfo infos[3] = {*from, *to, *authority};
  SolInstruction ix;
  ix.program_id = (SolPubkey *)&TOKEN_PROGRAM_ID;
  ix.accounts = metas;
  ix.account_len = 3;
  ix.data = data;
  ix.data_len = sizeof data;
  return sol_invoke_signed_c(&ix, infos, 3, seeds, seeds == NULL ? 0 : 1);
}

u64 token_initialize_account(SolAccountInfo *account, SolAccountInfo *mint, const SolPubkey *owner) {
  u8 data[33]; /* InitializeAccount3 { owner } */
  data[0] = 18;
  sol_copy(data + 1, owner->x, 32);
  SolAccountMeta metas[2] = {{account->key, true, false}, {mint->key, false, false}};
  SolAccountInfo infos[2] = {*account, *mint};
  SolInstruction ix;
  ix.program_id = (SolPubkey *)&TOKEN_PROGRAM_ID;
  ix.accounts = metas;
  ix.account_len = 2;
  ix.data = data;
  ix.data_len = sizeof data;
  return sol_invoke_signed_c(&ix, infos, 2, NULL, 0);
}

/* Ed25519SigVerify111111111111111111111111111 */
const SolPubkey ED25519_PROGRAM_ID = {{0x03, 0x7d, 0x46, 0xd6, 0x7c, 0x93, 0xfb, 0xbe, 0x12, 0xf9, 0x42,
                                       0x8f, 0x83, 0x8d, 0x40, 0xff, 0x05, 0x70, 0x74, 0x49, 0x27, 0xf4,
                                       0x8a, 0x64, 0xfc, 0xca, 0x70, 0x44, 0x80, 0x00, 0x00, 0x00}};
/* Sysvar1nstructions1111111111111111111111111 */
const SolPubkey INSTRUCTIONS_SYSVAR_ID = {{0x06, 0xa7, 0xd5, 0x17, 0x18, 0x7b, 0xd1, 0x66, 0x35, 0xda, 0xd4,
                                           0x04, 0x55, 0xfd, 0xc2, 0xc0, 0xc1, 0x24, 0xc6, 0x8f, 0x21, 0x56,
                                           0x75, 0xa5, 0xdb, 0xba, 0xcb, 0x5f, 0x08, 0x00, 0x00, 0x00}};
/* SysvarS1otHashes111111111111111111111111111 */
const SolPubkey SLOT_HASHES_SYSVAR_ID = {{0x06, 0xa7, 0xd5, 0x17, 0x19, 0x2f, 0x0a, 0xaf, 0xc6, 0xf2, 0x65,
                                          0xe3, 0xfb, 0x77, 0xcc, 0x7a, 0xda, 0x82, 0xc5, 0x29, 0xd0, 0xbe,
                                          0x3b, 0x13, 0x6e, 0x2d, 0x00, 0x55, 0x20, 0x00, 0x00, 0x00}};

u64 check_pda(const Context *ctx, const SolSignerSeed *seeds, u64 n, const SolAccountInfo *expected) {
  SolPubkey derived;
  if (sol_create_program_address(seeds, n, ctx->program_id, &derived) != 0) {
    return FAIL(ERR_WRONG_PDA, "no program address for these seeds");
  }
  if (!key_eq(&derived, expected->key)) return FAIL(ERR_WRONG_PDA, "account is not the program-derived address");
  return 0;
}

u64 require_uninitialized(const Context *ctx, const SolAccountInfo *a, u64 exists_code) {
  if (key_eq(a->owner, ctx->program_id)) return FAIL(exists_code, "account already exists");
  if (!key_eq(a->owner, &SYSTEM_PROGRAM_ID) || a->data_len != 0) {
    return FAIL(ERR_WRONG_ACCOUNT_OWNER, "address holds another program's account");
  }
  return 0;
}

bool mul_div(u64 a, u64 num, u64 den, bool round_up, u64 *out) {
  if (den == 0 || den >> 32 || num >> 32) return false;
  u64 q = a / den, r = a % den;
  u64 hi;
  if (!mul_u64(q, num, &hi)) return false;
  u64 lo_num = r * num; /* r < den < 2^32, num < 2^32 */
  u64 lo = lo_num / den;
  if (round_up && lo_num % den != 0) lo += 1;
  return add_u64(hi, lo, out);
}

bool is_zero(const u8 *p, u64 n) {
  u8 acc = 0;
  for (u64 i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}
