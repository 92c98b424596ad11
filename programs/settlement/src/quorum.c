/* Committee quorum: counts the distinct current committee members whose Ed25519 signatures over
 * `digest` were verified by the native Ed25519 program in this transaction.
 *
 * The Ed25519 program runs (as a precompile) before any program instruction, so an Ed25519 instruction
 * listed in the instructions sysvar means its signatures are valid over the bytes its offsets name. The
 * offsets may name bytes in *other* instructions of the transaction; this program then reads the
 * signature entries only from the Ed25519 instruction itself, so it refuses any entry whose signature,
 * public key or message is not inside that same instruction's data (index u16::MAX or its own index).
 * Every Ed25519 signature in the transaction must be over `digest`: the instruction is meant to be
 * sent alone with its signatures, and a signature over other bytes is a committee member's mistake or
 * an attack, not something to skip silently. */
#include "settlement.h"

#define IX_SELF 0xffff
#define ED25519_OFFSETS_START 2
#define ED25519_OFFSETS_SIZE 14

static inline u64 rd16(const u8 *p) { return (u64)p[0] | ((u64)p[1] << 8); }

/* Bounds of instruction `index` inside the instructions sysvar data: program id and data. */
static u64 locate_instruction(const u8 *d, u64 len, u64 index, const u8 **program_id, const u8 **data, u64 *data_len) {
  u64 count = rd16(d);
  if (index >= count || 2 + 2 * count > len) return FAIL(ERR_WRONG_SYSVAR, "instructions sysvar malformed");
  u64 at = rd16(d + 2 + 2 * index);
  if (at + 2 > len) return FAIL(ERR_WRONG_SYSVAR, "instructions sysvar malformed");
  u64 accounts = rd16(d + at);
  at += 2;
  u64 skip = accounts * 33;
  if (at + skip + 32 + 2 > len) return FAIL(ERR_WRONG_SYSVAR, "instructions sysvar malformed");
  at += skip;
  *program_id = d + at;
  at += 32;
  *data_len = rd16(d + at);
  at += 2;
  if (at + *data_len > len) return FAIL(ERR_WRONG_SYSVAR, "instructions sysvar malformed");
  *data = d + at;
  return 0;
}

static bool inside(u64 offset, u64 size, u64 len) { return offset <= len && size <= len - offset; }

u64 verify_quorum(const Config *c, const SolAccountInfo *sysvar, const u8 digest[32]) {
  if (!key_eq(sysvar->key, &INSTRUCTIONS_SYSVAR_ID)) return FAIL(ERR_WRONG_SYSVAR, "not the instructions sysvar");
  const u8 *d = sysvar->data;
  u64 len = sysvar->data_len;
  if (len < 4) return FAIL(ERR_WRONG_SYSVAR, "instructions sysvar malformed");
  u64 count = rd16(d);
  u32 seen = 0;
  u64 signers = 0;
  for (u64 i = 0; i < count; i++) {
    const u8 *program_id;
    const u8 *data;
    u64 data_len;
    TRY(locate_instruction(d, len, i, &program_id, &data, &data_len));
    if (!bytes32_eq(program_id, ED25519_PROGRAM_ID.x)) continue;
    if (data_len < ED25519_OFFSETS_START) return FAIL(ERR_ED25519_OFFSETS, "Ed25519 instruction too short");
    u64 n = data[0];
    if (!inside(ED25519_OFFSETS_START, n * ED25519_OFFSETS_SIZE, data_len)) {
      return FAIL(ERR_ED25519_OFFSETS, "Ed25519 signature offsets outside the instruction");
    }
    for (u64 s = 0; s < n; s++) {
      const u8 *o = data + ED25519_OFFSETS_START + s * ED25519_OFFSETS_SIZE;
      u64 sig_off = rd16(o), sig_ix = rd16(o + 2), pk_off = rd16(o + 4), pk_ix = rd16(o + 6);
      u64 msg_off = rd16(o + 8), msg_len = rd16(o + 10), msg_ix = rd16(o + 12);
      if ((sig_ix != IX_SELF && sig_ix != i) || (pk_ix != IX_SELF && pk_ix != i) || (msg_ix != IX_SELF && msg_ix != i)) {
        return FAIL(ERR_ED25519_OFFSETS, "Ed25519 offsets point into another instruction");
      }
      if (!inside(sig_off, 64, data_len) || !inside(pk_off, 32, data_len) || !inside(msg_off, msg_len, data_len)) {
        return FAIL(ERR_ED25519_OFFSETS, "Ed25519 offsets outside the instruction");
      }
      if (msg_len != 32 || !bytes32_eq(data + msg_off, digest)) {
        return FAIL(ERR_SIGNED_MESSAGE_MISMATCH, "a signature is not over the canonical message");
      }
      const u8 *pk = data + pk_off;
      u64 member = MAX_COMMITTEE;
      for (u64 m = 0; m < c->committee_len; m++) {
        if (bytes32_eq(pk, c->committee[m].x)) { member = m; break; }
      }
      if (member == MAX_COMMITTEE) return FAIL(ERR_NOT_COMMITTEE_MEMBER, "signer is not in the current committee");
      if (seen & (1U << member)) return FAIL(ERR_DUPLICATE_SIGNER, "a committee member signed twice");
      seen |= 1U << member;
      signers++;
    }
  }
  if (signers < c->threshold) return FAIL(ERR_QUORUM_NOT_REACHED, "fewer than threshold committee signatures");
  return 0;
}
