import { ConfigError, loadConfig } from './config';
import { HsmStartError } from './hsm/pkcs11-hsm';
import { createLogger } from './logger';
import { startService } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  // Every asynchronous PKCS#11 call occupies a libuv worker thread for its whole duration: give the
  // HSM sessions their threads and keep the default four for file system and DNS work.
  // This must happen before anything uses the thread pool.
  process.env.UV_THREADPOOL_SIZE ??= String(config.hsmSessions + 4);
  const logger = createLogger(config.logLevel);
  const service = await startService(config, { logger });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight');
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof HsmStartError) {
    // Expected start-up failures: say what is wrong in one line, without a stack.
    process.stderr.write(`kms: ${error.message}\n`);
  } else {
    process.stderr.write(`kms: start-up failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
