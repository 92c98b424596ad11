import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino'

export type { Logger }
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/**
 * Structured JSON logs to stderr (stdout stays free for command output). Each module takes a
 * child logger: `logger.child({ module: 'rpc' })`.
 */
export function createLogger (level: LogLevel, destination?: DestinationStream): Logger {
  return pino({
    level: level as LevelWithSilent,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime
  }, destination ?? pino.destination({ fd: 2, sync: true }))
}
