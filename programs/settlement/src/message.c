/* Canonical messages and digests. Committee members sign the SHA-256 digest of a canonical message
 * (one 32-byte digest per Ed25519 signature keeps a 7-member quorum within one transaction); the
 * program rebuilds the message from what it knows and compares digests. Fields are concatenated
 * without separators; integers are little-endian; every message starts with its own domain string and
 * carries the program id and the network's genesis hash. Mirrored by programs/client/messages.ts. */
#include "settlement.h"

static const u8 DOMAIN_ASSIGNMENT[] = "bitflow/assignment/v1";
static const u8 DOMAIN_COMMITTEE[] = "bitflow/committee/v1";
static const u8 DOMAIN_SLASH[] = "bitflow/slash/v1";
static const u8 DOMAIN_BLACKLIST[] = "bitflow/blacklist/v1";

#define SLICE(p, n) ((SolSignerSeed){(const u8 *)(p), (n)})
#define DOMAIN(d) SLICE((d), sizeof(d) - 1)

void sha256_concat(const SolSignerSeed *parts, u64 n, u8 out[32]) { sol_sha256(parts, n, out); }

void commitment_of(const u8 *output_root, const u8 *salt, u8 out[32]) {
  SolSignerSeed parts[2] = {SLICE(output_root, 32), SLICE(salt, 32)};
  sol_sha256(parts, 2, out);
}

void blacklist_hash(const u8 *keys, u64 n, u8 out[32]) {
  u8 count = (u8)n;
  SolSignerSeed parts[3] = {DOMAIN(DOMAIN_BLACKLIST), SLICE(&count, 1), SLICE(keys, 32 * n)};
  sol_sha256(parts, 3, out);
}

void assignment_digest(const Context *ctx, const Config *c, const AssignmentFields *f, u8 out[32]) {
  SolSignerSeed parts[14] = {
    DOMAIN(DOMAIN_ASSIGNMENT),
    SLICE(ctx->program_id->x, 32),
    SLICE(c->genesis_hash, 32),
    SLICE(&c->committee_epoch, 8),
    SLICE(f->execution_id, 32),
    SLICE(f->task_id, 32),
    SLICE(&f->attempt, 4),
    SLICE(f->node_operator, 32),
    SLICE(&f->role, 1),
    SLICE(f->blacklist_hash, 32),
    SLICE(f->seed, 32),
    SLICE(&f->liveness_round, 8),
    SLICE(&f->compute_units, 8),
    SLICE(&f->expiry_slot, 8),
  };
  sol_sha256(parts, 14, out);
}

void committee_digest(const Context *ctx, const Config *c, const ChangeCommitteeArgs *args, const u8 *members, u8 out[32]) {
  u64 n = args->committee_len;
  u8 count = (u8)n;
  SolSignerSeed parts[7] = {
    DOMAIN(DOMAIN_COMMITTEE),
    SLICE(ctx->program_id->x, 32),
    SLICE(c->genesis_hash, 32),
    SLICE(&c->committee_epoch, 8),
    SLICE(&count, 1),
    SLICE(members, 32 * n),
    SLICE(&args->expiry_slot, 8),
  };
  sol_sha256(parts, 7, out);
}

void slash_digest(const Context *ctx, const Config *c, const SlashFields *f, u8 out[32]) {
  SolSignerSeed parts[14] = {
    DOMAIN(DOMAIN_SLASH),
    SLICE(ctx->program_id->x, 32),
    SLICE(c->genesis_hash, 32),
    SLICE(&c->committee_epoch, 8),
    SLICE(f->execution_id, 32),
    SLICE(f->task_id, 32),
    SLICE(&f->attempt, 4),
    SLICE(f->accused_operator, 32),
    SLICE(f->asserter->commitment, 32),
    SLICE(f->verifier->commitment, 32),
    SLICE(f->asserter->output_root, 32),
    SLICE(f->verifier->output_root, 32),
    SLICE(f->bounty_to, 32),
    SLICE(&f->expiry_slot, 8),
  };
  sol_sha256(parts, 14, out);
}

static const u8 DOMAIN_SEED[] = "bitflow/seed/v1";
static const u8 DOMAIN_SAMPLE[] = "bitflow/sample/v1";

void seed_of(const Config *c, const DrawFields *f, u8 out[32]) {
  SolSignerSeed parts[7] = {
    DOMAIN(DOMAIN_SEED), SLICE(c->genesis_hash, 32), SLICE(f->execution_id, 32), SLICE(f->task_id, 32),
    SLICE(&f->attempt, 4), SLICE(&f->slot, 8), SLICE(f->slot_hash, 32),
  };
  sol_sha256(parts, 7, out);
}

bool sampled_by(const Config *c, const DrawFields *f, const u8 *commitment) {
  SolSignerSeed parts[8] = {
    DOMAIN(DOMAIN_SAMPLE), SLICE(c->genesis_hash, 32), SLICE(f->execution_id, 32), SLICE(f->task_id, 32),
    SLICE(&f->attempt, 4), SLICE(&f->slot, 8), SLICE(f->slot_hash, 32), SLICE(commitment, 32),
  };
  u8 h[32];
  sol_sha256(parts, 8, h);
  u64 draw;
  sol_copy(&draw, h, 8);
  return draw % PPM < c->params.sampling_ppm;
}
