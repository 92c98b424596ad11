/* Assign: (execution id, task id, attempt) -> node, kind, deadline, created only with a committee
 * quorum over the canonical assignment message, for an eligible node, as the task's one live attempt.
 *
 * Attempts of a task are numbered 0, 1, 2, ... across primary and verification assignments; the task
 * state ["task", execution, task id] holds the next number, so an attempt exists at most once and a
 * replayed assignment finds its account taken. A primary attempt is allowed for a task never assigned
 * or whose live attempt FAILED (deadline) or failed verification; a verification attempt only while
 * the task is PENDING_VERIFICATION without a live verifier.
 *
 * Seed rule: an attempt's seed is H("bitflow/seed/v1" || genesis || execution id || task id ||
 * attempt || S || SlotHashes[S]) with S = trigger slot + K, where the trigger slot is the execution's
 * ready slot (its request, or the latest task of it becoming VERIFIED) for the first attempt, the sampling decision's slot for a verification and the failure's slot for a
 * reassignment, and K = params.seed_delay_slots. SlotHashes[S] is the hash of the first slot >= S that
 * has one. The program computes the seed itself: the assignment must be settled while S is among the
 * last 512 slots. */
#include "settlement.h"

static const u8 SEED_TASK[] = {'t', 'a', 's', 'k'};
static const u8 SEED_ASSIGNMENT[] = {'a', 's', 's', 'i', 'g', 'n', 'm', 'e', 'n', 't'};

static bool specialized(const Node *node, const u8 *task_id) {
  for (u64 i = 0; i < node->spec_count && i < MAX_SPECIALIZATIONS; i++) {
    if (bytes32_eq(node->specializations[i], task_id)) return true;
  }
  return false;
}

static u64 check_blacklist(const u8 *list, u64 n, const SolPubkey *operator_) {
  for (u64 i = 0; i < n; i++) {
    const u8 *k = list + 32 * i;
    if (i > 0) {
      i32 cmp = 0;
      sol_memcmp_(list + 32 * (i - 1), k, 32, &cmp);
      if (cmp >= 0) return FAIL(ERR_INVALID_BLACKLIST, "blacklist must be strictly ascending");
    }
    if (bytes32_eq(k, operator_->x)) return FAIL(ERR_NODE_BLACKLISTED, "node is on the assignment's blacklist");
  }
  return 0;
}

/* Deadline = now + base + per_100cu x ceil(compute units / 100), unix seconds. */
static u64 deadline_of(const Params *p, i64 now, u64 compute_units, i64 *out) {
  u64 hundreds = (compute_units + 99) / 100;
  u64 extra;
  if (!mul_u64(hundreds, p->deadline_per_100cu_secs, &extra)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "deadline overflows");
  u64 d;
  if (now < 0 || !add_u64((u64)now, p->deadline_base_secs, &d) || !add_u64(d, extra, &d) || d > 0x7fffffffffffffffULL) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "deadline overflows");
  }
  *out = (i64)d;
  return 0;
}

/* accounts: 0 payer (signer, writable), 1 config, 2 execution (writable), 3 task state (writable),
 *           4 assignment (writable, created), 5 node (writable), 6 instructions sysvar,
 *           7 system program */
u64 assign(const Context *ctx) {
  if (ctx->accounts_len < 8) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "assign needs 8 accounts");
  SolAccountInfo *payer = &ctx->accounts[0];
  SolAccountInfo *config_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *task_acc = &ctx->accounts[3];
  SolAccountInfo *as_acc = &ctx->accounts[4];
  SolAccountInfo *node_acc = &ctx->accounts[5];
  SolAccountInfo *sysvar = &ctx->accounts[6];
  SolAccountInfo *system = &ctx->accounts[7];

  if (ctx->args_len < sizeof(AssignArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "assign arguments too short");
  AssignArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  u64 bl = args.blacklist_len;
  if (bl > MAX_BLACKLIST) return FAIL(ERR_INVALID_BLACKLIST, "blacklist longer than 8");
  if (ctx->args_len != sizeof(AssignArgs) + 32 * bl) return FAIL(ERR_INVALID_INSTRUCTION, "assign argument length");
  if (args.role > ROLE_UNVERIFIABLE) return FAIL(ERR_INVALID_INSTRUCTION, "unknown assignment kind");
  if (args.reserved[0] | args.reserved[1]) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  if (args.attempt == NO_ATTEMPT) return FAIL(ERR_WRONG_ATTEMPT, "attempt out of range");
  const u8 *blacklist = ctx->args + sizeof(AssignArgs);

  TRY(require_signer(payer));
  TRY(require_writable(payer));
  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  Execution *e;
  TRY(load_execution(ctx, exec_acc, config_acc->key, &e));
  Node *node;
  TRY(load_node_of(ctx, node_acc, config_acc->key, &node));
  TRY(require_writable(exec_acc));
  TRY(require_writable(task_acc));
  TRY(require_writable(as_acc));
  TRY(require_writable(node_acc));
  TRY(require_system_program(system));

  u64 index = MAX_TASKS;
  for (u64 i = 0; i < e->task_count && i < MAX_TASKS; i++) {
    if (bytes32_eq(e->tasks[i].task_id, args.task_id)) { index = i; break; }
  }
  if (index == MAX_TASKS) return FAIL(ERR_WRONG_EXECUTION, "task is not part of this execution");
  ExecTask *et = &e->tasks[index];

  /* the assignment account: canonical address of (execution, task, attempt), not taken yet */
  if (key_eq(as_acc->owner, ctx->program_id)) return FAIL(ERR_ASSIGNMENT_EXISTS, "assignment already recorded (replay)");
  TRY(require_uninitialized(ctx, as_acc, ERR_ASSIGNMENT_EXISTS));
  u8 as_bump;
  u32 attempt = args.attempt;
  SolSignerSeed as_seeds[5] = {{SEED_ASSIGNMENT, sizeof SEED_ASSIGNMENT}, {exec_acc->key->x, 32}, {args.task_id, 32},
                               {(const u8 *)&attempt, 4}, {&as_bump, 1}};
  TRY(find_pda(ctx, as_seeds, 4, as_acc, &as_bump));

  /* the task's state machine */
  bool new_task = !key_eq(task_acc->owner, ctx->program_id);
  TaskState *t = NULL;
  u8 task_bump = 0;
  SolSignerSeed task_seeds[4] = {{SEED_TASK, sizeof SEED_TASK}, {exec_acc->key->x, 32}, {args.task_id, 32}, {&task_bump, 1}};
  u64 trigger;
  if (new_task) {
    TRY(require_uninitialized(ctx, task_acc, ERR_ALREADY_INITIALIZED));
    TRY(find_pda(ctx, task_seeds, 3, task_acc, &task_bump));
    if (!IS_PRIMARY(args.role)) return FAIL(ERR_WRONG_STATE, "no primary attempt to verify");
    if (attempt != 0) return FAIL(ERR_WRONG_ATTEMPT, "a task's first attempt is 0");
    trigger = e->ready_slot;
  } else {
    TRY(load_task(ctx, task_acc, exec_acc, &t));
    if (!bytes32_eq(t->task_id, args.task_id)) return FAIL(ERR_WRONG_EXECUTION, "task state of another task");
    if (attempt != t->next_attempt) return FAIL(ERR_WRONG_ATTEMPT, "attempt is not the task's next attempt");
    if (IS_PRIMARY(args.role)) {
      if (t->status != TS_FAILED && t->status != TS_VERIFICATION_FAILED) {
        return FAIL(ERR_TASK_BUSY, "the task has a live attempt");
      }
    } else {
      if (t->status != TS_PENDING_VERIFICATION || t->verifier_attempt != NO_ATTEMPT) {
        return FAIL(ERR_TASK_BUSY, "the task is not waiting for a verifier");
      }
      if (key_eq(node_acc->key, &t->primary_node)) return FAIL(ERR_NODE_BLACKLISTED, "a node cannot verify itself");
    }
    trigger = t->trigger_slot;
  }
  if (IS_PRIMARY(args.role)) {
    if (et->flags & TASK_CANCELLED) return FAIL(ERR_TASK_CANCELLED, "task was cancelled and refunded");
    if (et->flags & TASK_PAID) return FAIL(ERR_TASK_BUSY, "task already paid");
  }

  /* node eligibility */
  if (node->status != NODE_ACTIVE) return FAIL(ERR_NODE_SLASHED, "node was slashed");
  if (node->stake < c->params.min_stake) return FAIL(ERR_STAKE_BELOW_MINIMUM, "node's bonded stake is below the minimum");
  if (!specialized(node, args.task_id)) return FAIL(ERR_NODE_NOT_SPECIALIZED, "node did not declare this task");
  TRY(check_blacklist(blacklist, bl, &node->operator_));

  /* payment, escrow and the stake-to-payments-in-flight ratio */
  u64 payment = et->price;
  if (args.role == ROLE_VERIFICATION && !verification_payment(&c->params, et->price, &payment)) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "verification payment overflows");
  }
  if (args.role == ROLE_UNVERIFIABLE && !mul_div(et->price, c->params.unverifiable_pay_bps, BPS, false, &payment)) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "unverifiable payment overflows");
  }
  u64 reserved;
  if (!add_u64(e->reserved_amount, payment, &reserved)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "escrow reservation overflows");
  if (reserved > e->balance) return FAIL(ERR_ESCROW_INSUFFICIENT, "escrow cannot cover this payment");
  u64 in_flight, needed;
  if (!add_u64(node->payments_in_flight, payment, &in_flight)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "payments in flight overflow");
  if (!mul_div(in_flight, c->params.min_stake_ratio_bps, BPS, true, &needed)) return FAIL(ERR_STAKE_TOO_LOW_FOR_PAYMENTS, "payments in flight too large for any stake");
  if (node->stake < needed) return FAIL(ERR_STAKE_TOO_LOW_FOR_PAYMENTS, "stake below the minimum ratio of payments in flight");

  /* seed, expiry and the committee quorum */
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.slot > args.expiry_slot) return FAIL(ERR_EXPIRED, "assignment expired");
  u64 seed_slot;
  if (!add_u64(trigger, c->params.seed_delay_slots, &seed_slot)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "seed slot overflows");
  u8 hash[32];
  TRY(slot_hash(seed_slot, clock.slot, hash));
  u8 seed[32];
  DrawFields draw = {e->execution_id, args.task_id, attempt, seed_slot, hash};
  seed_of(c, &draw, seed);
  u8 bl_hash[32];
  blacklist_hash(blacklist, bl, bl_hash);
  AssignmentFields f = {e->execution_id, args.task_id, attempt, args.role, node->operator_.x, bl_hash, seed,
                        args.liveness_round, et->compute_units, args.expiry_slot};
  u8 digest[32];
  assignment_digest(ctx, c, &f, digest);
  TRY(verify_quorum(c, sysvar, digest));
  i64 deadline;
  TRY(deadline_of(&c->params, clock.unix_timestamp, et->compute_units, &deadline));

  /* effects */
  if (new_task) {
    SolSignerSeeds signer = {task_seeds, 4};
    TRY(create_pda_account(payer, task_acc, sizeof(TaskState), ctx->program_id, &signer));
    t = (TaskState *)task_acc->data;
    sol_zero(t, sizeof(TaskState));
    t->kind = KIND_TASK;
    t->layout = LAYOUT_V1;
    t->bump = task_bump;
    t->task_index = (u8)index;
    t->execution = *exec_acc->key;
    sol_copy(t->task_id, args.task_id, 32);
    t->primary_attempt = NO_ATTEMPT;
    t->verifier_attempt = NO_ATTEMPT;
    t->trigger_slot = trigger;
  }
  SolSignerSeeds as_signer = {as_seeds, 5};
  TRY(create_pda_account(payer, as_acc, sizeof(Assignment), ctx->program_id, &as_signer));
  Assignment *as = (Assignment *)as_acc->data;
  sol_zero(as, sizeof(Assignment));
  as->kind = KIND_ASSIGNMENT;
  as->layout = LAYOUT_V1;
  as->bump = as_bump;
  as->role = args.role;
  as->status = AS_ASSIGNED;
  as->execution = *exec_acc->key;
  sol_copy(as->task_id, args.task_id, 32);
  as->node = *node_acc->key;
  as->attempt = attempt;
  as->verifies = args.role == ROLE_VERIFICATION ? t->primary_attempt : NO_ATTEMPT;
  as->payment = payment;
  as->assigned_slot = clock.slot;
  as->deadline = deadline;
  sol_copy(as->seed, seed, 32);

  t->next_attempt = attempt + 1;
  if (IS_PRIMARY(args.role)) {
    t->status = TS_ASSIGNED;
    t->sampling = args.role == ROLE_UNVERIFIABLE ? SAMPLING_UNVERIFIABLE : SAMPLING_UNDECIDED;
    t->primary_attempt = attempt;
    t->verifier_attempt = NO_ATTEMPT;
    t->primary_node = *node_acc->key;
    et->flags |= TASK_ASSIGNED;
  } else {
    t->verifier_attempt = attempt;
  }
  e->reserved_amount = reserved;
  node->payments_in_flight = in_flight;
  return 0;
}
