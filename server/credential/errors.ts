import type { Reason } from './status.js';

/** A failure that becomes a condition: its reason, and a message that says what to do next. */
export class CredentialError extends Error {
  constructor(readonly reason: Reason, message: string) {
    super(message);
    this.name = 'CredentialError';
  }
}
