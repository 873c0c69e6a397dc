/** An error in user-supplied input (a model folder, a prompt, a task file), named for the user. */
export class InputError extends Error {
  constructor(
    message: string,
    /** The file the problem is in, when there is one. */
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'InputError';
  }
}
