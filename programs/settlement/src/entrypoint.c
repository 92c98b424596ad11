/* Entrypoint: input deserialization and instruction dispatch. */
#include "settlement.h"

#define MAX_ACCOUNTS 16

bool sol_deserialize(const u8 *input, SolParameters *params, u64 capacity) {
  u64 n = *(const u64 *)input;
  input += sizeof(u64);
  if (n > capacity) return false;
  params->accounts_len = n;
  for (u64 i = 0; i < n; i++) {
    u8 dup = *input;
    if (dup == SOL_NON_DUP_MARKER) {
      SolAccountInfo *a = &params->accounts[i];
      a->is_signer = input[1] != 0;
      a->is_writable = input[2] != 0;
      a->executable = input[3] != 0;
      input += 8; /* dup marker, three flags, four bytes of padding */
      a->key = (SolPubkey *)input;
      input += sizeof(SolPubkey);
      a->owner = (SolPubkey *)input;
      input += sizeof(SolPubkey);
      a->lamports = (u64 *)input;
      input += sizeof(u64);
      a->data_len = *(const u64 *)input;
      input += sizeof(u64);
      a->data = (u8 *)input;
      input += a->data_len + SOL_MAX_PERMITTED_DATA_INCREASE;
      input = (const u8 *)(((u64)input + 7) & ~7ULL);
      a->rent_epoch = *(const u64 *)input;
      input += sizeof(u64);
    } else {
      /* a repeated account: same info as its first occurrence */
      params->accounts[i] = params->accounts[dup];
      input += 8;
    }
  }
  params->data_len = *(const u64 *)input;
  input += sizeof(u64);
  params->data = input;
  input += params->data_len;
  params->program_id = (const SolPubkey *)input;
  return true;
}

u64 entrypoint(const u8 *input) {
  SolAccountInfo accounts[MAX_ACCOUNTS];
  SolParameters params;
  params.accounts = accounts;
  if (!sol_deserialize(input, &params, MAX_ACCOUNTS)) return FAIL(ERR_INVALID_INSTRUCTION, "too many accounts");
  if (params.data_len < IX_HEADER_SIZE) return FAIL(ERR_INVALID_INSTRUCTION, "instruction data shorter than its header");
  if (params.data[0] != IX_VERSION) return FAIL(ERR_UNSUPPORTED_VERSION, "unsupported instruction version");
  for (int i = 2; i < IX_HEADER_SIZE; i++) {
    if (params.data[i] != 0) return FAIL(ERR_INVALID_INSTRUCTION, "reserved header bytes must be zero");
  }
  Context ctx;
  ctx.program_id = params.program_id;
  ctx.accounts = params.accounts;
  ctx.accounts_len = params.accounts_len;
  ctx.args = params.data + IX_HEADER_SIZE;
  ctx.args_len = params.data_len - IX_HEADER_SIZE;
  switch (params.data[1]) {
    case IX_INITIALIZE_CONFIG: return initialize_config(&ctx);
    case IX_REGISTER_NODE: return register_node(&ctx);
    case IX_ADD_STAKE: return add_stake(&ctx);
    case IX_UPDATE_CAPACITY: return update_capacity(&ctx);
    case IX_UNBOND: return unbond(&ctx);
    case IX_WITHDRAW: return withdraw(&ctx);
    case IX_CHANGE_COMMITTEE: return change_committee(&ctx);
    case IX_OPEN_EXECUTION: return open_execution(&ctx);
    case IX_CANCEL_TASKS: return cancel_tasks(&ctx);
    case IX_ASSIGN: return assign(&ctx);
    case IX_COMMIT: return commit(&ctx);
    case IX_DECIDE_SAMPLING: return decide_sampling(&ctx);
    case IX_REVEAL: return reveal(&ctx);
    case IX_EXPIRE: return expire(&ctx);
    case IX_PAY: return pay(&ctx);
    case IX_RECORD_SLASH: return record_slash(&ctx);
    case IX_EXECUTE_SLASH: return execute_slash(&ctx);
    case IX_TOP_UP: return top_up(&ctx);
    case IX_REFRESH_SEED: return refresh_seed(&ctx);
    case IX_CLOSE_EXECUTION: return close_execution(&ctx);
    default: return FAIL(ERR_INVALID_INSTRUCTION, "unknown instruction");
  }
}
