/**
 * Every error a user can see is one of these: a stable `code` for tools and a message that says
 * what to do about it.
 */
export class BitflowError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A command-line, environment or config-file option is unknown or invalid. Exit code 2. */
export class OptionError extends BitflowError {
  constructor (message: string) { super('ERR_OPTION', message) }
}

export class DataDirLockedError extends BitflowError {
  constructor (dataDir: string, pid: number) {
    super('ERR_DATA_DIR_LOCKED', `data dir ${dataDir} is in use by another bitflowd (pid ${pid}); stop it or pass a different --data-dir`)
  }
}

export class DataDirFormatError extends BitflowError {
  constructor (message: string) { super('ERR_DATA_DIR_FORMAT', message) }
}

export class IdentityError extends BitflowError {
  constructor (message: string) { super('ERR_IDENTITY', message) }
}

export class NetworkPresetError extends BitflowError {
  constructor (message: string) { super('ERR_NETWORK_PRESET', message) }
}
