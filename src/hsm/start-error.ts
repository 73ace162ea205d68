import { StartError } from '../start-error';

/** Fails start-up: wrong module, missing token, wrong PIN. The message never holds the PIN. */
export class HsmStartError extends StartError {}
