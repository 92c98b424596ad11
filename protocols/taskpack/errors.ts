/**
 * Errors of the taskpack format. `protocols/` cannot import the daemon's BitflowError, so these carry
 * the same shape (a stable `code` and a message that says what to fix); the CLI maps them by `code`.
 */
export class TaskpackError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** One problem found in a YAML or JSON document, located by field path and (when known) line. */
export interface Issue {
  /** dotted field path, e.g. `spec.requirements.gpu` or `spec.inputs[1].name`; '' for the document */
  path: string
  /** 1-based line in the source file, when the source is YAML */
  line?: number
  message: string
}

export function formatIssue (file: string, issue: Issue): string {
  return issue.line !== undefined ? `${file} line ${issue.line}: ${issue.message}` : `${file}: ${issue.message}`
}

/** manifest.yaml is malformed: every issue found is listed, each naming its field and line. */
export class ManifestError extends TaskpackError {
  readonly issues: Issue[]
  constructor (file: string, issues: Issue[]) {
    super('ERR_TASKPACK_MANIFEST', issues.map(i => formatIssue(file, i)).join('\n'))
    this.issues = issues
  }
}

/** configs/schema.json, configs/default.yaml or user parameters are invalid. */
export class TaskpackConfigError extends TaskpackError {
  readonly issues: Issue[]
  constructor (file: string, issues: Issue[]) {
    super('ERR_TASKPACK_CONFIG', issues.map(i => formatIssue(file, i)).join('\n'))
    this.issues = issues
  }
}

/** The taskpack directory cannot be packed safely (links, special files, traversal, size). */
export class PackError extends TaskpackError {
  constructor (code: 'ERR_PACK_LINK' | 'ERR_PACK_SPECIAL_FILE' | 'ERR_PACK_PATH' | 'ERR_PACK_TOO_LARGE' | 'ERR_PACK_CHANGED' | 'ERR_PACK_NOT_DIRECTORY', message: string) {
    super(code, message)
  }
}

/** The directory is missing files the taskpack layout requires, or they are inconsistent. */
export class TaskpackLayoutError extends TaskpackError {
  readonly problems: string[]
  constructor (problems: string[]) {
    super('ERR_TASKPACK_LAYOUT', problems.join('\n'))
    this.problems = problems
  }
}
