export * from './errors.js'
export * from './settlement.js'
export * from './messages.js'
export * from './ed25519.js'
