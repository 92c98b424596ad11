/**
 * Outcome of validating a wire message before any handler sees it. Mirrors gossipsub's
 * accept/ignore/reject so that invalid senders are penalized by peer scoring.
 */
export type Verdict<T> =
  | { result: 'accept'; value: T }
  | { result: 'ignore'; reason: string }
  | { result: 'reject'; reason: string }

export const accept = <T>(value: T): Verdict<T> => ({ result: 'accept', value })
export const ignore = (reason: string): Verdict<never> => ({ result: 'ignore', reason })
export const reject = (reason: string): Verdict<never> => ({ result: 'reject', reason })
