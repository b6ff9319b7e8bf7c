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
