#!/usr/bin/env node
import { aliasCommandLine } from './cli/alias-command';
import { auditCommandLine } from './cli/audit-command';
import { withCore, type CliCore } from './cli/core';
import { credentialCommandLine } from './cli/credential-command';
import { keyCommandLine } from './cli/key-command';
import { storeCommandLine } from './cli/store-command';
import { COMMANDS, helpText, nearestHelp, own, UsageError } from './cli/usage';
import { loadConfig } from './config';
import { restrictUmask } from './file-modes';
import { KmsError } from './errors';
import { CredentialOptionsError } from './identity/credentials';

/**
 * The operator's command line (`npm run kms -- ...`, or `npx kms ...` after `npm run build`). It
 * reads the same environment as the service (KMS_DATA_DIR, the PKCS#11 settings) and works while
 * the service runs on the same data directory: `kms help` lists the commands (src/cli/usage.ts).
 *
 * Exit codes: 0 done; 1 the KMS refused or failed the operation (its code and message on standard
 * error); 2 the command line is wrong (the message and the command's help on standard error).
 * Every command line is checked before the HSM and the database are opened.
 */

const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h';

async function main(argv: readonly string[]): Promise<void> {
  // Before anything is created: the database, the token, audit-cli.log are the service's own (file-modes.ts).
  restrictUmask();
  const [group, ...rest] = argv;
  if (group === undefined) throw new UsageError('no command given');
  if (group === 'help' || isHelp(group)) {
    const text = helpText(rest);
    if (text === undefined) throw new UsageError(`no such command: ${rest.join(' ')}`, rest);
    process.stdout.write(text);
    return;
  }
  if (own(COMMANDS, group) === undefined) throw new UsageError(`unknown command: ${group}`);
  const [verb, ...args] = rest;
  if (verb === undefined) throw new UsageError(`${group} needs a command`, [group]);
  if (isHelp(verb) || args.some(isHelp)) {
    const text = helpText(isHelp(verb) ? [group] : [group, verb]);
    if (text === undefined) throw new UsageError(`unknown ${group} command: ${verb}`, [group]);
    process.stdout.write(text);
    return;
  }
  if (group === 'audit') {
    const run = auditCommandLine(verb, args);
    return await run(loadConfig());
  }
  if (group === 'store') {
    const run = storeCommandLine(verb, args);
    return await run(loadConfig());
  }
  const run: (core: CliCore) => Promise<void> =
    group === 'key' ? keyCommandLine(verb, args) : group === 'alias' ? aliasCommandLine(verb, args) : credentialCommandLine(verb, args);
  await withCore(loadConfig(), run);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`kms: ${error.message}\n\n${nearestHelp(error.topic)}`);
    process.exitCode = 2;
    return;
  }
  if (error instanceof CredentialOptionsError) {
    process.stderr.write(`kms: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  const message = error instanceof KmsError ? `${error.code} ${error.publicMessage}` : error instanceof Error ? error.message : String(error);
  process.stderr.write(`kms: ${message}\n`);
  process.exitCode = 1;
});
