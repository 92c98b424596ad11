/* RefreshSeed: a task waiting for an assignment whose seed slot is about to leave SlotHashes (the
 * committee could not settle it in time, e.g. with fewer than threshold oracles up) gets a new
 * trigger slot, the current one, so its next seed is again unknown and recent. Anyone may call it,
 * but only once the old seed is stale: the caller cannot know SlotHashes[now + K] when it calls, so
 * timing the call does not let it choose the draw.
 *
 * A task never assigned derives its first seed from the execution's ready slot, which moves; a task
 * with a state account (failed, failed verification, or sampled without a live verifier) from its
 * own trigger slot. */
#include "settlement.h"

static const u8 SEED_TASK[] = {'t', 'a', 's', 'k'};

/* accounts: 0 config, 1 execution (writable), 2 task state (writable; may not exist yet) */
u64 refresh_seed(const Context *ctx) {
  if (ctx->accounts_len < 3) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "refresh_seed needs 3 accounts");
  SolAccountInfo *config_acc = &ctx->accounts[0];
  SolAccountInfo *exec_acc = &ctx->accounts[1];
  SolAccountInfo *task_acc = &ctx->accounts[2];
  if (ctx->args_len != 32) return FAIL(ERR_INVALID_INSTRUCTION, "refresh_seed takes the 32-byte task id");
  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  Execution *e;
  TRY(load_execution(ctx, exec_acc, config_acc->key, &e));
  TRY(require_writable(exec_acc));
  u64 index = MAX_TASKS;
  for (u64 i = 0; i < e->task_count && i < MAX_TASKS; i++) {
    if (bytes32_eq(e->tasks[i].task_id, ctx->args)) { index = i; break; }
  }
  if (index == MAX_TASKS) return FAIL(ERR_WRONG_EXECUTION, "task is not part of this execution");
  if (e->tasks[index].flags & (TASK_CANCELLED | TASK_PAID)) return FAIL(ERR_TASK_BUSY, "task is cancelled or paid");
  SolClock clock;
  TRY(read_clock(&clock));

  u64 *trigger;
  if (key_eq(task_acc->owner, ctx->program_id)) {
    TaskState *t;
    TRY(load_task(ctx, task_acc, exec_acc, &t));
    if (!bytes32_eq(t->task_id, ctx->args)) return FAIL(ERR_WRONG_EXECUTION, "task state of another task");
    TRY(require_writable(task_acc));
    bool waiting = t->status == TS_FAILED || t->status == TS_VERIFICATION_FAILED ||
                   (t->status == TS_PENDING_VERIFICATION && t->verifier_attempt == NO_ATTEMPT);
    if (!waiting) return FAIL(ERR_TASK_BUSY, "the task is not waiting for an assignment");
    trigger = &t->trigger_slot;
  } else {
    /* the task state PDA must be this task's, so a fake account cannot stand in for "never assigned" */
    SolSignerSeed seeds[3] = {{SEED_TASK, sizeof SEED_TASK}, {exec_acc->key->x, 32}, {ctx->args, 32}};
    u8 bump;
    TRY(find_pda(ctx, seeds, 3, task_acc, &bump));
    trigger = &e->ready_slot;
  }
  u64 stale;
  if (!add_u64(*trigger, c->params.seed_delay_slots, &stale) || !add_u64(stale, SEED_STALE_SLOTS, &stale)) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "trigger slot overflows");
  }
  if (clock.slot <= stale) return FAIL(ERR_WRONG_STATE, "the seed is still recent enough to settle");
  *trigger = clock.slot;
  return 0;
}
