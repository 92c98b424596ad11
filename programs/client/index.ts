export * from './errors.js'
export * from './settlement.js'
