/* Outcomes of an assignment: the commitment H(outputRoot || salt) and its slot, the sampling decision
 * from SlotHashes K slots after the commitment, the reveals and the verification result, and the
 * expiry of an assignment whose deadline passed without a commitment.
 *
 * Order (DESIGN.md "Proof of Sampling"): the asserter commits; anyone then decides sampling from the
 * SlotHashes entry of commit slot + K (unknown when the asserter committed). Not sampled: the asserter
 * reveals and the task is VERIFIED. Sampled: a verifier is assigned and commits (its commitment must
 * differ from the asserter's), then both reveal in any order; once both have, the task is VERIFIED if
 * the output roots agree or the verifier's verdict is a match (tolerance comparisons happen off chain),
 * otherwise VERIFICATION_FAILED, which opens the dispute (slash) and a reassignment. An unverifiable
 * attempt (ROLE_UNVERIFIABLE) has its sampling fixed at assignment: it reveals right after committing
 * and is never sampled, so it can never be slashed. */
#include "settlement.h"

/* The signer must be the operator of the node the assignment names. */
static u64 require_assignee(const Context *ctx, const SolAccountInfo *signer, SolAccountInfo *node_acc,
                            const Assignment *as) {
  TRY(require_signer(signer));
  TRY(require_program_account(ctx, node_acc, KIND_NODE, sizeof(Node)));
  if (!key_eq(node_acc->key, &as->node)) return FAIL(ERR_WRONG_EXECUTION, "not the assigned node");
  const Node *node = (const Node *)node_acc->data;
  if (!key_eq(signer->key, &node->operator_)) return FAIL(ERR_NOT_OPERATOR, "signer is not the assigned node's operator");
  return 0;
}

typedef struct {
  TaskState *t;
  Assignment *as;
} Pair;

/* execution, task state and assignment at accounts[first..first+2], linked to each other */
static u64 load_pair(const Context *ctx, u64 first, Pair *out) {
  SolAccountInfo *exec_acc = &ctx->accounts[first];
  TRY(require_program_account(ctx, exec_acc, KIND_EXECUTION, sizeof(Execution)));
  TRY(load_task(ctx, &ctx->accounts[first + 1], exec_acc, &out->t));
  TRY(load_assignment(ctx, &ctx->accounts[first + 2], exec_acc, &out->as));
  if (!bytes32_eq(out->t->task_id, out->as->task_id)) return FAIL(ERR_WRONG_EXECUTION, "assignment of another task");
  return 0;
}

/* accounts: 0 operator (signer), 1 node, 2 execution, 3 task state (writable), 4 assignment (writable),
 *           [5 the primary assignment, for a verifier's commitment] */
u64 commit(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "commit needs 5 accounts");
  SolAccountInfo *signer = &ctx->accounts[0];
  SolAccountInfo *node_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *task_acc = &ctx->accounts[3];
  SolAccountInfo *as_acc = &ctx->accounts[4];
  if (ctx->args_len != sizeof(CommitArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "commit argument length");
  CommitArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  if (bytes32_is_zero(args.commitment)) return FAIL(ERR_INVALID_INSTRUCTION, "zero commitment");

  Pair pair;
  TRY(load_pair(ctx, 2, &pair));
  TaskState *t = pair.t;
  Assignment *as = pair.as;
  TRY(require_writable(task_acc));
  TRY(require_writable(as_acc));
  TRY(require_assignee(ctx, signer, node_acc, as));
  if (as->status != AS_ASSIGNED) return FAIL(ERR_WRONG_STATE, "assignment already committed or failed");
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.unix_timestamp > as->deadline) return FAIL(ERR_DEADLINE_PASSED, "deadline passed");

  if (IS_PRIMARY(as->role)) {
    if (t->primary_attempt != as->attempt || t->status != TS_ASSIGNED) return FAIL(ERR_WRONG_STATE, "attempt is not live");
  } else {
    if (t->verifier_attempt != as->attempt || t->status != TS_PENDING_VERIFICATION) return FAIL(ERR_WRONG_STATE, "verification is not live");
    if (ctx->accounts_len < 6) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "a verifier's commit needs the primary assignment");
    Assignment *primary;
    TRY(load_assignment(ctx, &ctx->accounts[5], exec_acc, &primary));
    if (!bytes32_eq(primary->task_id, as->task_id) || primary->attempt != as->verifies) {
      return FAIL(ERR_WRONG_EXECUTION, "not the assignment under verification");
    }
    if (bytes32_eq(primary->commitment, args.commitment)) return FAIL(ERR_COPIED_COMMITMENT, "verifier copied the asserter's commitment");
  }
  sol_copy(as->commitment, args.commitment, 32);
  as->commit_slot = clock.slot;
  as->status = AS_COMMITTED;
  if (IS_PRIMARY(as->role)) {
    t->status = TS_COMPLETED;
    t->trigger_slot = clock.slot;
  }
  return 0;
}

/* accounts: 0 config, 1 execution, 2 task state (writable), 3 primary assignment. Anyone may call. */
u64 decide_sampling(const Context *ctx) {
  if (ctx->accounts_len < 4) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "decide_sampling needs 4 accounts");
  SolAccountInfo *config_acc = &ctx->accounts[0];
  SolAccountInfo *exec_acc = &ctx->accounts[1];
  SolAccountInfo *task_acc = &ctx->accounts[2];
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "decide_sampling takes no arguments");
  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  Execution *e;
  TRY(load_execution(ctx, exec_acc, config_acc->key, &e));
  Pair pair;
  TRY(load_pair(ctx, 1, &pair));
  TaskState *t = pair.t;
  Assignment *as = pair.as;
  TRY(require_writable(task_acc));
  if (as->role == ROLE_UNVERIFIABLE) return FAIL(ERR_WRONG_STATE, "an unverifiable attempt is never sampled");
  if (as->role != ROLE_PRIMARY || as->attempt != t->primary_attempt) return FAIL(ERR_WRONG_STATE, "not the live primary attempt");
  if (t->status != TS_COMPLETED || t->sampling != SAMPLING_UNDECIDED || as->status != AS_COMMITTED) {
    return FAIL(ERR_WRONG_STATE, "sampling is decided once, after the commitment");
  }
  SolClock clock;
  TRY(read_clock(&clock));
  u64 slot;
  if (!add_u64(as->commit_slot, c->params.seed_delay_slots, &slot)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "decision slot overflows");
  u8 hash[32];
  TRY(slot_hash(slot, clock.slot, hash));
  DrawFields draw = {e->execution_id, as->task_id, as->attempt, slot, hash};
  if (sampled_by(c, &draw, as->commitment)) {
    t->sampling = SAMPLING_SAMPLED;
    t->status = TS_PENDING_VERIFICATION;
    t->trigger_slot = clock.slot; /* the verifier's seed derives from a slot after this decision */
  } else {
    t->sampling = SAMPLING_SKIPPED;
  }
  return 0;
}

/* Both reveals are in: record the verification result. A failed primary is never paid, so its
 * payment stops counting against the escrow (the asserter's node keeps it in flight until a slash
 * settles it). */
static void resolve(Execution *e, TaskState *t, const Assignment *primary, Assignment *verifier, u64 slot) {
  verifier->resolved = 1;
  bool agree = bytes32_eq(primary->output_root, verifier->output_root) || verifier->verdict == VERDICT_MATCH;
  t->status = agree ? TS_VERIFIED : TS_VERIFICATION_FAILED;
  t->trigger_slot = slot;
  if (agree) e->ready_slot = slot;
  if (!agree) e->reserved_amount = e->reserved_amount > primary->payment ? e->reserved_amount - primary->payment : 0;
}

/* accounts: 0 operator (signer), 1 node, 2 execution (writable), 3 task state (writable),
 *           4 assignment (writable), [5 the other assignment of a sampled task (writable): the
 *           verifier's for the asserter, the primary for the verifier] */
u64 reveal(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "reveal needs 5 accounts");
  SolAccountInfo *signer = &ctx->accounts[0];
  SolAccountInfo *node_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *task_acc = &ctx->accounts[3];
  SolAccountInfo *as_acc = &ctx->accounts[4];
  if (ctx->args_len != sizeof(RevealArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "reveal argument length");
  RevealArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  if (!is_zero(args.reserved, sizeof args.reserved)) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");

  Pair pair;
  TRY(load_pair(ctx, 2, &pair));
  TaskState *t = pair.t;
  Assignment *as = pair.as;
  TRY(require_writable(task_acc));
  TRY(require_writable(as_acc));
  TRY(require_assignee(ctx, signer, node_acc, as));
  if (as->status != AS_COMMITTED) return FAIL(ERR_WRONG_STATE, "nothing committed, or already revealed");
  u8 opened[32];
  commitment_of(args.output_root, args.salt, opened);
  if (!bytes32_eq(opened, as->commitment)) return FAIL(ERR_COMMITMENT_MISMATCH, "reveal does not open the commitment");
  SolClock clock;
  TRY(read_clock(&clock));

  Assignment *other = NULL;
  if (IS_PRIMARY(as->role)) {
    if (args.verdict != VERDICT_NONE) return FAIL(ERR_INVALID_INSTRUCTION, "an asserter gives no verdict");
    if (t->primary_attempt != as->attempt) return FAIL(ERR_WRONG_STATE, "superseded attempt");
    if (t->sampling == SAMPLING_UNDECIDED) return FAIL(ERR_WRONG_STATE, "reveal only after the sampling decision");
    if (t->sampling == SAMPLING_SAMPLED) {
      if (t->status != TS_PENDING_VERIFICATION || t->verifier_attempt == NO_ATTEMPT) {
        return FAIL(ERR_WRONG_STATE, "a sampled asserter reveals after its verifier committed");
      }
      if (ctx->accounts_len < 6) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "a sampled reveal needs the verifier's assignment");
      TRY(load_assignment(ctx, &ctx->accounts[5], exec_acc, &other));
      if (!bytes32_eq(other->task_id, as->task_id) || other->attempt != t->verifier_attempt) {
        return FAIL(ERR_WRONG_EXECUTION, "not the live verification");
      }
      if (other->status != AS_COMMITTED && other->status != AS_REVEALED) {
        return FAIL(ERR_WRONG_STATE, "a sampled asserter reveals after its verifier committed");
      }
    } else if (t->status != TS_COMPLETED) {
      return FAIL(ERR_WRONG_STATE, "task is not awaiting this reveal");
    }
  } else {
    if (args.verdict != VERDICT_MATCH && args.verdict != VERDICT_MISMATCH) return FAIL(ERR_INVALID_INSTRUCTION, "a verifier states match or mismatch");
    if (t->verifier_attempt != as->attempt || t->status != TS_PENDING_VERIFICATION) return FAIL(ERR_WRONG_STATE, "verification is not live");
    if (ctx->accounts_len < 6) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "a verifier's reveal needs the primary assignment");
    TRY(load_assignment(ctx, &ctx->accounts[5], exec_acc, &other));
    if (!bytes32_eq(other->task_id, as->task_id) || other->attempt != as->verifies) {
      return FAIL(ERR_WRONG_EXECUTION, "not the assignment under verification");
    }
    as->verdict = args.verdict;
  }
  sol_copy(as->output_root, args.output_root, 32);
  sol_copy(as->salt, args.salt, 32);
  as->status = AS_REVEALED;

  if (IS_PRIMARY(as->role) && (t->sampling == SAMPLING_SKIPPED || t->sampling == SAMPLING_UNVERIFIABLE)) {
    TRY(require_writable(exec_acc));
    t->status = TS_VERIFIED;
    ((Execution *)exec_acc->data)->ready_slot = clock.slot;
  } else if (other != NULL && other->status == AS_REVEALED) {
    TRY(require_writable(exec_acc));
    TRY(require_writable(&ctx->accounts[5]));
    Execution *e = (Execution *)exec_acc->data;
    if (IS_PRIMARY(as->role)) resolve(e, t, as, other, clock.slot); else resolve(e, t, other, as, clock.slot);
  }
  return 0;
}

/* accounts: 0 execution (writable), 1 task state (writable), 2 assignment (writable), 3 node (writable).
 * Anyone may call once the deadline passed without a commitment: the attempt FAILED, its payment
 * leaves the node's and the escrow's in-flight totals, and the task can be reassigned. */
u64 expire(const Context *ctx) {
  if (ctx->accounts_len < 4) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "expire needs 4 accounts");
  SolAccountInfo *exec_acc = &ctx->accounts[0];
  SolAccountInfo *task_acc = &ctx->accounts[1];
  SolAccountInfo *as_acc = &ctx->accounts[2];
  SolAccountInfo *node_acc = &ctx->accounts[3];
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "expire takes no arguments");
  Execution *e;
  TRY(load_execution(ctx, exec_acc, NULL, &e));
  Pair pair;
  TRY(load_pair(ctx, 0, &pair));
  TaskState *t = pair.t;
  Assignment *as = pair.as;
  TRY(require_program_account(ctx, node_acc, KIND_NODE, sizeof(Node)));
  if (!key_eq(node_acc->key, &as->node)) return FAIL(ERR_WRONG_EXECUTION, "not the assigned node");
  Node *node = (Node *)node_acc->data;
  TRY(require_writable(exec_acc));
  TRY(require_writable(task_acc));
  TRY(require_writable(as_acc));
  TRY(require_writable(node_acc));
  if (as->status != AS_ASSIGNED) return FAIL(ERR_WRONG_STATE, "only an uncommitted assignment expires");
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.unix_timestamp <= as->deadline) return FAIL(ERR_DEADLINE_NOT_PASSED, "deadline not passed");
  if (IS_PRIMARY(as->role)) {
    if (t->primary_attempt != as->attempt || t->status != TS_ASSIGNED) return FAIL(ERR_WRONG_STATE, "attempt is not live");
    t->status = TS_FAILED;
  } else {
    if (t->verifier_attempt != as->attempt) return FAIL(ERR_WRONG_STATE, "verification is not live");
    t->verifier_attempt = NO_ATTEMPT; /* another verifier may be assigned */
  }
  t->trigger_slot = clock.slot;
  as->status = AS_FAILED;
  release_payment(e, node, as);
  return 0;
}
