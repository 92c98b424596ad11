import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { Keypair, PublicKey, SystemProgram, type TransactionInstruction } from '@solana/web3.js'
import {
  ProgramError, TOKEN_PROGRAM_ID, NODE_STAKE_OFFSET, addStake, configAddress, decodeConfig, decodeNode,
  initializeConfig, nodeAddress, paramsAreSafe, registerNode, unbond, updateCapacity, vaultAddress, withdraw,
  type Params
} from '../../../programs/client/index.js'
import { Chain, DEFAULT_PARAMS, buildProgram, type Outcome } from './harness.js'

let program: Uint8Array
beforeAll(() => { program = buildProgram() })

const taskId = (name: string): Uint8Array => createHash('sha256').update(name).digest()
const genesis = (name: string): Uint8Array => createHash('sha256').update(`genesis:${name}`).digest()

function expectError (outcome: Outcome, code: ProgramError): void {
  if (outcome.customError !== code) {
    throw new Error(`expected ${ProgramError[code]} (${code}), got ${outcome.ok ? 'success' : String(outcome.customError)}\n${outcome.describe()}`)
  }
}

function expectOk (outcome: Outcome): void {
  if (!outcome.ok) throw new Error(`transaction failed:\n${outcome.describe()}`)
}

/** A network: config initialized with a 4-member committee and a 6-decimal stake mint. */
class Net {
  readonly chain: Chain
  readonly mint: PublicKey
  readonly treasury: PublicKey
  readonly committee: Keypair[]
  readonly genesisHash: Uint8Array
  readonly config: PublicKey

  constructor (chain: Chain, name = 'test') {
    this.chain = chain
    this.mint = chain.createMint(6)
    this.treasury = chain.createTokenAccount(this.mint, Keypair.generate().publicKey, 0n)
    this.committee = Array.from({ length: 4 }, () => Keypair.generate())
    this.genesisHash = genesis(name)
    this.config = configAddress(chain.programId, this.genesisHash)[0]
  }

  initIx (over: Partial<Parameters<typeof initializeConfig>[0]> = {}): TransactionInstruction {
    return initializeConfig({
      programId: this.chain.programId,
      payer: this.chain.payer.publicKey,
      genesisHash: this.genesisHash,
      stakeMint: this.mint,
      treasury: this.treasury,
      committee: this.committee.map(k => k.publicKey),
      params: DEFAULT_PARAMS,
      ...over
    })
  }

  init (): this {
    expectOk(this.chain.send([this.initIx()]))
    return this
  }
}

/** A node's keys and funding: an owner (cold) key with tokens and an operator (daemon) key. */
class Operator {
  readonly owner: Keypair
  readonly operator: Keypair
  readonly ownerToken: PublicKey
  readonly node: PublicKey
  readonly vault: PublicKey

  constructor (readonly net: Net, balance = 5_000_000_000n) {
    this.owner = net.chain.funded()
    this.operator = net.chain.funded()
    this.ownerToken = net.chain.createTokenAccount(net.mint, this.owner.publicKey, balance)
    this.node = nodeAddress(net.chain.programId, net.config, this.operator.publicKey)[0]
    this.vault = vaultAddress(net.chain.programId, this.node)[0]
  }

  registerIx (over: Partial<Parameters<typeof registerNode>[0]> = {}): TransactionInstruction {
    return registerNode({
      programId: this.net.chain.programId,
      config: this.net.config,
      owner: this.owner.publicKey,
      operator: this.operator.publicKey,
      ownerToken: this.ownerToken,
      stakeMint: this.net.mint,
      amount: 2_000_000_000n,
      capacity: 4,
      specializations: [taskId('resnet/0'), taskId('resnet/1')],
      ...over
    })
  }

  register (): this {
    expectOk(this.net.chain.send([this.registerIx()], [this.owner, this.operator]))
    return this
  }
}

describe('settlement program: network config', () => {
  let chain: Chain
  beforeEach(() => { chain = new Chain(program) })

  it('initializes the config with threshold ceil(2n/3) and the parameters', () => {
    const net = new Net(chain)
    const outcome = chain.send([net.initIx()])
    expectOk(outcome)
    const acc = chain.account(net.config)!
    expect(acc.owner.equals(chain.programId)).toBe(true)
    const config = decodeConfig(acc.data)
    expect(config.committeeLen).toBe(4)
    expect(config.threshold).toBe(3)
    expect(config.committeeEpoch).toBe(0n)
    expect(config.mintDecimals).toBe(6)
    expect(config.stakeMint.equals(net.mint)).toBe(true)
    expect(config.treasury.equals(net.treasury)).toBe(true)
    expect(config.committee.map(k => k.toBase58())).toEqual(net.committee.map(k => k.publicKey.toBase58()))
    expect(config.params).toEqual(DEFAULT_PARAMS)
    expect(Buffer.from(config.genesisHash).equals(Buffer.from(net.genesisHash))).toBe(true)
    expect(config.bump).toBe(configAddress(chain.programId, net.genesisHash)[1])
  })

  it('computes the threshold for every committee size up to 7', () => {
    for (let n = 1; n <= 7; n++) {
      const net = new Net(chain, `size-${n}`)
      const committee = Array.from({ length: n }, () => Keypair.generate().publicKey)
      expectOk(chain.send([net.initIx({ committee })]))
      expect(decodeConfig(chain.account(net.config)!.data).threshold).toBe(Math.ceil(2 * n / 3))
    }
  })

  it('refuses a second initialization', () => {
    const net = new Net(chain).init()
    expectError(chain.send([net.initIx()]), ProgramError.AlreadyInitialized)
  })

  it('refuses committees that are empty, too large or repeat a member', () => {
    const net = new Net(chain)
    const eight = Array.from({ length: 8 }, () => Keypair.generate().publicKey)
    expectError(chain.send([net.initIx({ committee: eight })]), ProgramError.InvalidCommittee)
    expectError(chain.send([net.initIx({ committee: [] })]), ProgramError.InvalidCommittee)
    const a = Keypair.generate().publicKey
    expectError(chain.send([net.initIx({ committee: [a, Keypair.generate().publicKey, a] })]), ProgramError.InvalidCommittee)
    expectError(chain.send([net.initIx({ committee: [PublicKey.default] })]), ProgramError.InvalidCommittee)
  })

  it('refuses out-of-range parameters and parameters that violate the PoSP condition', () => {
    const net = new Net(chain)
    const bad: Array<Partial<Params>> = [
      { bountyBps: 5_001 },
      { seedDelaySlots: 0 },
      { seedDelaySlots: 257 },
      { deadlineBaseSecs: 0 },
      { unbondingDelay: 3600n, challengeDelay: 3600n },
      { slashBps: 10_001 },
      { samplingPpm: 0 },
      { collusionBps: 10_000 },
      { minStake: 0n },
      { minFee: 0n },
      { unverifiablePayBps: 0 },
      { unverifiablePayBps: 10_000 }
    ]
    for (const over of bad) {
      expectError(chain.send([net.initIx({ params: { ...DEFAULT_PARAMS, ...over } })]), ProgramError.InvalidParams)
    }
    // p (1%) x (1 - r) x (R + S) <= C: sampling too rare to deter a node that skips the work
    const unsafe: Params = { ...DEFAULT_PARAMS, samplingPpm: 10_000, minStakeRatioBps: 10_000, computeCostBps: 500_000 }
    expect(paramsAreSafe(unsafe)).toBe(false)
    expect(paramsAreSafe(DEFAULT_PARAMS)).toBe(true)
    expectError(chain.send([net.initIx({ params: unsafe })]), ProgramError.UnsafeParams)
  })

  it('refuses a config address that is not the canonical PDA (wrong seeds or non-canonical bump)', () => {
    const net = new Net(chain)
    const wrongSeeds = configAddress(chain.programId, genesis('other'))[0]
    expectError(chain.send([net.initIx({ config: wrongSeeds })]), ProgramError.WrongPda)
    const [, bump] = configAddress(chain.programId, net.genesisHash)
    let other: PublicKey | undefined
    for (let b = bump - 1; b >= 0 && other === undefined; b--) {
      try { other = PublicKey.createProgramAddressSync([Buffer.from('config'), net.genesisHash, Buffer.from([b])], chain.programId) } catch { /* on curve */ }
    }
    expectError(chain.send([net.initIx({ config: other! })]), ProgramError.WrongPda)
  })

  it('refuses a stake mint or treasury that is not an SPL token account of that mint', () => {
    const net = new Net(chain)
    const fakeMint = Keypair.generate().publicKey
    chain.setAccount(fakeMint, new Uint8Array(82).fill(1), SystemProgram.programId)
    expectError(chain.send([net.initIx({ stakeMint: fakeMint })]), ProgramError.WrongAccountOwner)
    const otherMint = chain.createMint(6)
    const otherTreasury = chain.createTokenAccount(otherMint, Keypair.generate().publicKey, 0n)
    expectError(chain.send([net.initIx({ treasury: otherTreasury })]), ProgramError.WrongMint)
  })

  it('refuses a missing payer signature', () => {
    const net = new Net(chain)
    const ix = net.initIx({ payer: Keypair.generate().publicKey })
    ix.keys[0]!.isSigner = false
    expectError(chain.send([ix]), ProgramError.MissingSigner)
  })

  it('refuses an unknown instruction version or tag', () => {
    const net = new Net(chain)
    const ix = net.initIx()
    ix.data[0] = 2
    expectError(chain.send([ix]), ProgramError.UnsupportedVersion)
    const ix2 = net.initIx()
    ix2.data[1] = 99
    expectError(chain.send([ix2]), ProgramError.InvalidInstruction)
  })
})

describe('settlement program: node registration and stake', () => {
  let chain: Chain
  let net: Net
  beforeEach(() => {
    chain = new Chain(program)
    net = new Net(chain).init()
  })

  it('registers a node: stake moves into a vault owned by the node PDA; owner and operator are recorded', () => {
    const op = new Operator(net)
    expectOk(chain.send([op.registerIx()], [op.owner, op.operator]))
    const node = decodeNode(chain.account(op.node)!.data)
    expect(node.owner.equals(op.owner.publicKey)).toBe(true)
    expect(node.operator.equals(op.operator.publicKey)).toBe(true)
    expect(node.config.equals(net.config)).toBe(true)
    expect(node.vault.equals(op.vault)).toBe(true)
    expect(node.stake).toBe(2_000_000_000n)
    expect(node.capacity).toBe(4)
    expect(node.specializations.map(s => Buffer.from(s).toString('hex'))).toEqual(
      [taskId('resnet/0'), taskId('resnet/1')].map(s => Buffer.from(s).toString('hex')))
    expect(chain.tokenBalance(op.vault)).toBe(2_000_000_000n)
    expect(chain.tokenBalance(op.ownerToken)).toBe(3_000_000_000n)
    const vault = chain.account(op.vault)!
    expect(vault.owner.equals(TOKEN_PROGRAM_ID)).toBe(true)
    expect(new PublicKey(vault.data.subarray(32, 64)).equals(op.node)).toBe(true) // token authority = node PDA
    expect(decodeConfig(chain.account(net.config)!.data).nodeCount).toBe(1n)
  })

  it('registers even when someone pre-funded the node address with lamports', () => {
    const op = new Operator(net)
    chain.svm.airdrop(op.node.toBase58() as never, 1_000n as never)
    expectOk(chain.send([op.registerIx()], [op.owner, op.operator]))
    expect(decodeNode(chain.account(op.node)!.data).stake).toBe(2_000_000_000n)
  })

  it('refuses registration without the operator signature or the owner signature', () => {
    const op = new Operator(net)
    const noOperator = op.registerIx()
    noOperator.keys[1]!.isSigner = false
    expectError(chain.send([noOperator], [op.owner]), ProgramError.MissingSigner)
    const noOwner = op.registerIx()
    noOwner.keys[0]!.isSigner = false
    expectError(chain.send([noOwner], [op.operator]), ProgramError.MissingSigner)
    expect(chain.tokenBalance(op.ownerToken)).toBe(5_000_000_000n)
  })

  it('refuses stake below the minimum, duplicate or missing specializations, and a second registration', () => {
    const op = new Operator(net)
    expectError(chain.send([op.registerIx({ amount: 999_999_999n })], [op.owner, op.operator]), ProgramError.StakeBelowMinimum)
    expectError(chain.send([op.registerIx({ specializations: [] })], [op.owner, op.operator]), ProgramError.InvalidSpecializations)
    expectError(chain.send([op.registerIx({ specializations: [taskId('a'), taskId('a')] })], [op.owner, op.operator]), ProgramError.InvalidSpecializations)
    op.register()
    expectError(chain.send([op.registerIx({ capacity: 5 })], [op.owner, op.operator]), ProgramError.AlreadyInitialized)
    expect(chain.tokenBalance(op.ownerToken)).toBe(3_000_000_000n)
  })

  it('refuses a wrong node PDA, a non-canonical bump and a substituted vault address', () => {
    const op = new Operator(net)
    const other = nodeAddress(chain.programId, net.config, Keypair.generate().publicKey)[0]
    expectError(chain.send([op.registerIx({ node: other })], [op.owner, op.operator]), ProgramError.WrongPda)
    const [, bump] = nodeAddress(chain.programId, net.config, op.operator.publicKey)
    let offBump: PublicKey | undefined
    for (let b = bump - 1; b >= 0 && offBump === undefined; b--) {
      try { offBump = PublicKey.createProgramAddressSync([Buffer.from('node'), net.config.toBytes(), op.operator.publicKey.toBytes(), Buffer.from([b])], chain.programId) } catch { /* on curve */ }
    }
    expectError(chain.send([op.registerIx({ node: offBump! })], [op.owner, op.operator]), ProgramError.WrongPda)
    const attackerVault = Keypair.generate().publicKey
    expectError(chain.send([op.registerIx({ vault: attackerVault })], [op.owner, op.operator]), ProgramError.WrongPda)
    expect(chain.tokenBalance(op.ownerToken)).toBe(5_000_000_000n)
  })

  it('refuses the wrong mint, a funding account of another mint and a fake config', () => {
    const op = new Operator(net)
    const otherMint = chain.createMint(6)
    expectError(chain.send([op.registerIx({ stakeMint: otherMint })], [op.owner, op.operator]), ProgramError.WrongMint)
    const foreignToken = chain.createTokenAccount(otherMint, op.owner.publicKey, 5_000_000_000n)
    expectError(chain.send([op.registerIx({ ownerToken: foreignToken })], [op.owner, op.operator]), ProgramError.WrongMint)
    // a config with valid-looking contents, owned by another program
    const fake = Keypair.generate().publicKey
    chain.setAccount(fake, chain.account(net.config)!.data, SystemProgram.programId)
    expectError(chain.send([op.registerIx({ config: fake })], [op.owner, op.operator]), ProgramError.WrongAccountOwner)
    expect(chain.tokenBalance(op.ownerToken)).toBe(5_000_000_000n)
    expect(chain.tokenBalance(foreignToken)).toBe(5_000_000_000n)
  })

  it('refuses a substituted token program', () => {
    const op = new Operator(net)
    const ix = op.registerIx()
    ix.keys[7]!.pubkey = SystemProgram.programId
    expectError(chain.send([ix], [op.owner, op.operator]), ProgramError.WrongTokenProgram)
  })

  it('adds stake from the owner; refuses the operator, a substituted vault and an overflowing stake', () => {
    const op = new Operator(net).register()
    const base = { programId: chain.programId, node: op.node, ownerToken: op.ownerToken }
    const addOk = chain.send([addStake({ ...base, owner: op.owner.publicKey, amount: 500_000_000n })], [op.owner])
    expectOk(addOk)
    expect(decodeNode(chain.account(op.node)!.data).stake).toBe(2_500_000_000n)
    expect(chain.tokenBalance(op.vault)).toBe(2_500_000_000n)

    expectError(chain.send([addStake({ ...base, owner: op.operator.publicKey, amount: 1n })], [op.operator]), ProgramError.NotOwner)
    // another node's vault, or the owner's own token account, in place of this node's vault
    const op2 = new Operator(net).register()
    expectError(chain.send([addStake({ ...base, owner: op.owner.publicKey, amount: 1n, vault: op2.vault })], [op.owner]), ProgramError.WrongVault)
    const spare = chain.createTokenAccount(net.mint, op.owner.publicKey, 0n)
    expectError(chain.send([addStake({ ...base, owner: op.owner.publicKey, amount: 1n, vault: spare })], [op.owner]), ProgramError.WrongVault)

    // stake recorded near u64::MAX: adding more must fail before any token moves
    const acc = chain.account(op.node)!
    new DataView(acc.data.buffer).setBigUint64(NODE_STAKE_OFFSET, (1n << 64n) - 10n, true)
    chain.setAccount(op.node, acc.data, chain.programId, acc.lamports)
    expectError(chain.send([addStake({ ...base, owner: op.owner.publicKey, amount: 100n })], [op.owner]), ProgramError.ArithmeticOverflow)
    expect(chain.tokenBalance(op.vault)).toBe(2_500_000_000n)
    expect(chain.tokenBalance(op.ownerToken)).toBe(2_500_000_000n)
  })

  it('lets the owner or the operator update capacity, nobody else', () => {
    const op = new Operator(net).register()
    expectOk(chain.send([updateCapacity({ programId: chain.programId, signer: op.operator.publicKey, node: op.node, capacity: 9 })], [op.operator]))
    expect(decodeNode(chain.account(op.node)!.data).capacity).toBe(9)
    expectOk(chain.send([updateCapacity({ programId: chain.programId, signer: op.owner.publicKey, node: op.node, capacity: 2 })], [op.owner]))
    expect(decodeNode(chain.account(op.node)!.data).capacity).toBe(2)
    const stranger = chain.funded()
    expectError(chain.send([updateCapacity({ programId: chain.programId, signer: stranger.publicKey, node: op.node, capacity: 1 })], [stranger]), ProgramError.NotNodeAuthority)
  })

  it('unbonds and withdraws by the owner only, after the unbonding delay', () => {
    const op = new Operator(net).register()
    const t0 = chain.now()
    const unbondIx = (owner: PublicKey, amount: bigint): TransactionInstruction =>
      unbond({ programId: chain.programId, owner, config: net.config, node: op.node, amount })
    const withdrawIx = (owner: PublicKey, destination = op.ownerToken): TransactionInstruction =>
      withdraw({ programId: chain.programId, owner, node: op.node, destination })

    // the operator key can neither unbond nor withdraw; nor can anyone else
    expectError(chain.send([unbondIx(op.operator.publicKey, 1n)], [op.operator]), ProgramError.NotOwner)
    const stranger = chain.funded()
    expectError(chain.send([unbondIx(stranger.publicKey, 1n)], [stranger]), ProgramError.NotOwner)
    const unsigned = unbondIx(op.owner.publicKey, 1n)
    unsigned.keys[0]!.isSigner = false
    expectError(chain.send([unsigned]), ProgramError.MissingSigner)
    expectError(chain.send([unbondIx(op.owner.publicKey, 2_000_000_001n)], [op.owner]), ProgramError.InsufficientStake)
    expectError(chain.send([withdrawIx(op.owner.publicKey)], [op.owner]), ProgramError.NothingToWithdraw)

    const cu = chain.send([unbondIx(op.owner.publicKey, 1_500_000_000n)], [op.owner])
    expectOk(cu)
    const node = decodeNode(chain.account(op.node)!.data)
    expect(node.stake).toBe(500_000_000n)
    expect(node.unbonding).toBe(1_500_000_000n)
    expect(node.unbondingEndsAt).toBe(t0 + DEFAULT_PARAMS.unbondingDelay)

    // before the delay ends: refused, nothing moves
    chain.setTime(t0 + DEFAULT_PARAMS.unbondingDelay - 1n)
    expectError(chain.send([withdrawIx(op.owner.publicKey)], [op.owner]), ProgramError.UnbondingNotFinished)
    expect(chain.tokenBalance(op.vault)).toBe(2_000_000_000n)

    chain.setTime(t0 + DEFAULT_PARAMS.unbondingDelay)
    expectError(chain.send([withdrawIx(op.operator.publicKey)], [op.operator]), ProgramError.NotOwner)
    const operatorToken = chain.createTokenAccount(net.mint, op.operator.publicKey, 0n)
    expectError(chain.send([withdrawIx(op.operator.publicKey, operatorToken)], [op.operator]), ProgramError.NotOwner)
    // a destination of another mint
    const foreign = chain.createTokenAccount(chain.createMint(6), op.owner.publicKey, 0n)
    expectError(chain.send([withdrawIx(op.owner.publicKey, foreign)], [op.owner]), ProgramError.WrongMint)
    // a substituted vault
    const op2 = new Operator(net).register()
    const sub = withdraw({ programId: chain.programId, owner: op.owner.publicKey, node: op.node, destination: op.ownerToken, vault: op2.vault })
    expectError(chain.send([sub], [op.owner]), ProgramError.WrongVault)
    expect(chain.tokenBalance(op.vault)).toBe(2_000_000_000n)
    expect(chain.tokenBalance(op2.vault)).toBe(2_000_000_000n)
    expect(chain.tokenBalance(operatorToken)).toBe(0n)

    expectOk(chain.send([withdrawIx(op.owner.publicKey)], [op.owner]))
    expect(chain.tokenBalance(op.vault)).toBe(500_000_000n)
    expect(chain.tokenBalance(op.ownerToken)).toBe(4_500_000_000n)
    const after = decodeNode(chain.account(op.node)!.data)
    expect(after.unbonding).toBe(0n)
    expect(after.stake).toBe(500_000_000n)
    expectError(chain.send([withdrawIx(op.owner.publicKey)], [op.owner]), ProgramError.NothingToWithdraw)
  })

  it('refuses a node account owned by another program and an unbond against another network', () => {
    const op = new Operator(net).register()
    const fakeNode = Keypair.generate().publicKey
    chain.setAccount(fakeNode, chain.account(op.node)!.data, SystemProgram.programId)
    expectError(chain.send([unbond({ programId: chain.programId, owner: op.owner.publicKey, config: net.config, node: fakeNode, amount: 1n })], [op.owner]), ProgramError.WrongAccountOwner)
    const net2 = new Net(chain, 'other').init()
    expectError(chain.send([unbond({ programId: chain.programId, owner: op.owner.publicKey, config: net2.config, node: op.node, amount: 1n })], [op.owner]), ProgramError.WrongConfig)
    // a node account passed where the config belongs
    expectError(chain.send([unbond({ programId: chain.programId, owner: op.owner.publicKey, config: op.node, node: op.node, amount: 1n })], [op.owner]), ProgramError.WrongAccountKind)
  })
})
