/**
 * The few SPL Token / Associated Token Account instructions and layouts the local chain and its
 * helpers need (LiteSVM ships both programs). Layouts: spl-token's Mint (82 bytes) and Account
 * (165 bytes).
 */
import { PublicKey, SystemProgram, TransactionInstruction } from '@solana/web3.js'

export const TOKEN_PROGRAM_ID = new PublicKey('TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA')
export const TOKEN_2022_PROGRAM_ID = new PublicKey('TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb')
export const ASSOCIATED_TOKEN_PROGRAM_ID = new PublicKey('ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL')
export const MINT_SIZE = 82
export const TOKEN_ACCOUNT_SIZE = 165

export interface MintInfo { mintAuthority: PublicKey | null, supply: bigint, decimals: number, isInitialized: boolean, freezeAuthority: PublicKey | null }
export interface TokenAccountInfo { mint: PublicKey, owner: PublicKey, amount: bigint, delegate: PublicKey | null, state: number, isNative: bigint | null, delegatedAmount: bigint, closeAuthority: PublicKey | null }

const view = (d: Uint8Array): DataView => new DataView(d.buffer, d.byteOffset, d.byteLength)
const key = (d: Uint8Array, at: number): PublicKey => new PublicKey(d.subarray(at, at + 32))
const optKey = (d: Uint8Array, at: number): PublicKey | null => view(d).getUint32(at, true) === 1 ? key(d, at + 4) : null

export function isTokenProgram (owner: PublicKey | string): boolean {
  const s = typeof owner === 'string' ? owner : owner.toBase58()
  return s === TOKEN_PROGRAM_ID.toBase58() || s === TOKEN_2022_PROGRAM_ID.toBase58()
}

export function decodeMint (d: Uint8Array): MintInfo | undefined {
  if (d.length < MINT_SIZE || d.length === TOKEN_ACCOUNT_SIZE) return undefined
  return { mintAuthority: optKey(d, 0), supply: view(d).getBigUint64(36, true), decimals: d[44]!, isInitialized: d[45] === 1, freezeAuthority: optKey(d, 46) }
}

export function decodeTokenAccount (d: Uint8Array): TokenAccountInfo | undefined {
  if (d.length < TOKEN_ACCOUNT_SIZE) return undefined
  const v = view(d)
  return {
    mint: key(d, 0),
    owner: key(d, 32),
    amount: v.getBigUint64(64, true),
    delegate: optKey(d, 72),
    state: d[108]!,
    isNative: v.getUint32(109, true) === 1 ? v.getBigUint64(113, true) : null,
    delegatedAmount: v.getBigUint64(121, true),
    closeAuthority: optKey(d, 129)
  }
}

/** `uiTokenAmount` as Solana's RPC formats it. */
export function uiTokenAmount (amount: bigint, decimals: number): { amount: string, decimals: number, uiAmount: number, uiAmountString: string } {
  const s = amount.toString().padStart(decimals + 1, '0')
  const whole = s.slice(0, s.length - decimals)
  const frac = s.slice(s.length - decimals).replace(/0+$/, '')
  const uiAmountString = frac.length > 0 ? `${whole}.${frac}` : whole
  return { amount: amount.toString(), decimals, uiAmount: Number(uiAmountString), uiAmountString }
}

export function associatedTokenAddress (owner: PublicKey, mint: PublicKey, tokenProgram = TOKEN_PROGRAM_ID): PublicKey {
  return PublicKey.findProgramAddressSync([owner.toBytes(), tokenProgram.toBytes(), mint.toBytes()], ASSOCIATED_TOKEN_PROGRAM_ID)[0]
}

/** System create_account + InitializeMint2 (no freeze authority). */
export function createMintInstructions (a: { payer: PublicKey, mint: PublicKey, mintAuthority: PublicKey, decimals: number, lamports: number }): TransactionInstruction[] {
  const data = new Uint8Array(67)
  data[0] = 20 // InitializeMint2
  data[1] = a.decimals
  data.set(a.mintAuthority.toBytes(), 2)
  data[34] = 0 // no freeze authority
  return [
    SystemProgram.createAccount({ fromPubkey: a.payer, newAccountPubkey: a.mint, lamports: a.lamports, space: MINT_SIZE, programId: TOKEN_PROGRAM_ID }),
    new TransactionInstruction({ programId: TOKEN_PROGRAM_ID, keys: [{ pubkey: a.mint, isSigner: false, isWritable: true }], data: Buffer.from(data) })
  ]
}

/** Associated token account creation that succeeds when the account already exists. */
export function createAssociatedTokenAccountIdempotent (a: { payer: PublicKey, owner: PublicKey, mint: PublicKey }): TransactionInstruction {
  return new TransactionInstruction({
    programId: ASSOCIATED_TOKEN_PROGRAM_ID,
    keys: [
      { pubkey: a.payer, isSigner: true, isWritable: true },
      { pubkey: associatedTokenAddress(a.owner, a.mint), isSigner: false, isWritable: true },
      { pubkey: a.owner, isSigner: false, isWritable: false },
      { pubkey: a.mint, isSigner: false, isWritable: false },
      { pubkey: SystemProgram.programId, isSigner: false, isWritable: false },
      { pubkey: TOKEN_PROGRAM_ID, isSigner: false, isWritable: false }
    ],
    data: Buffer.from([1])
  })
}

export function mintToInstruction (a: { mint: PublicKey, destination: PublicKey, authority: PublicKey, amount: bigint }): TransactionInstruction {
  const data = new Uint8Array(9)
  data[0] = 7 // MintTo
  new DataView(data.buffer).setBigUint64(1, a.amount, true)
  return new TransactionInstruction({
    programId: TOKEN_PROGRAM_ID,
    keys: [
      { pubkey: a.mint, isSigner: false, isWritable: true },
      { pubkey: a.destination, isSigner: false, isWritable: true },
      { pubkey: a.authority, isSigner: true, isWritable: false }
    ],
    data: Buffer.from(data)
  })
}

/** jsonParsed form of a token account or mint, as Solana's account-decoder renders it, or undefined. */
export function parseTokenAccountJson (data: Uint8Array, mintDecimals: (mint: PublicKey) => number | undefined): unknown {
  if (data.length === TOKEN_ACCOUNT_SIZE) {
    const t = decodeTokenAccount(data)!
    const decimals = mintDecimals(t.mint)
    if (decimals === undefined) return undefined
    const states = ['uninitialized', 'initialized', 'frozen']
    const info: Record<string, unknown> = {
      isNative: t.isNative !== null,
      mint: t.mint.toBase58(),
      owner: t.owner.toBase58(),
      state: states[t.state] ?? 'uninitialized',
      tokenAmount: uiTokenAmount(t.amount, decimals)
    }
    if (t.delegate !== null) { info.delegate = t.delegate.toBase58(); info.delegatedAmount = uiTokenAmount(t.delegatedAmount, decimals) }
    if (t.closeAuthority !== null) info.closeAuthority = t.closeAuthority.toBase58()
    return { type: 'account', info }
  }
  if (data.length === MINT_SIZE) {
    const m = decodeMint(data)!
    return {
      type: 'mint',
      info: {
        decimals: m.decimals,
        freezeAuthority: m.freezeAuthority?.toBase58() ?? null,
        isInitialized: m.isInitialized,
        mintAuthority: m.mintAuthority?.toBase58() ?? null,
        supply: m.supply.toString()
      }
    }
  }
  return undefined
}
