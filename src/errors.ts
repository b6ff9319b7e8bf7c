/**
 * A user mistake (bad flag value, unreadable file, shape mismatch): the CLI prints the one-line
 * message and exits 2; the server answers 4xx. Anything else is an internal failure.
 */
export class UserError extends Error {
  constructor(
    message: string,
    /** Machine-readable code for the server's `{error: {code, message, field?}}`. */
    readonly code = "bad_input",
    /** The flag, field or file the message is about. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/**
 * The abort reason of work a user cancelled (a job's DELETE, a cancelled queue group). Loops that
 * call `signal.throwIfAborted()` throw it as it is: callers tell it apart with `instanceof`.
 */
export class Cancelled extends Error {
  constructor(message = "cancelled") {
    super(message);
    this.name = "Cancelled";
  }
}

/**
 * The abort reason of a server that is stopping: its running jobs are not cancelled but left
 * queued, and the next start resumes them.
 */
export class ServerStopping extends Error {
  constructor(message = "server stopping") {
    super(message);
    this.name = "ServerStopping";
  }
}

/**
 * An error as a message between processes or threads (a slice worker, a training worker, a
 * training process): a UserError keeps its code and field, anything else its stack.
 */
export interface ErrorMessage {
  kind: "error";
  message: string;
  code?: string;
  field?: string;
  stack?: string;
}

export function toErrorMessage(err: unknown): ErrorMessage {
  if (err instanceof UserError)
    return { kind: "error", message: err.message, code: err.code, field: err.field };
  if (err instanceof Error) return { kind: "error", message: err.message, stack: err.stack };
  return { kind: "error", message: String(err) };
}

/** The error an ErrorMessage stands for: a UserError again, or an Error (its message prefixed). */
export function fromErrorMessage(m: ErrorMessage, prefix = ""): Error {
  if (m.code) return new UserError(m.message, m.code, m.field);
  return Object.assign(new Error(prefix + m.message), m.stack ? { stack: m.stack } : {});
}
