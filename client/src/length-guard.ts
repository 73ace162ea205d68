/**
 * An encrypting stream that refuses to be written more than its declared plaintext length. The
 * library checks the declared length too, but by throwing inside its transform, which escapes as an
 * uncaught exception (it crashed a test process): this wrapper fails the stream first, with a typed
 * error, and passes back-pressure both ways.
 *
 * The library's stream must not be destroyed either (its inner pipeline rethrows the premature
 * close, uncaught again): when this stream fails, the inner one is ended and drained to nowhere,
 * which also makes the library zero its copy of the data key.
 */
import { Duplex } from 'node:stream';
import { PlaintextLengthExceededError } from './errors';

export class LengthGuardedStream extends Duplex {
  private left: number;
  private abandoned = false;

  constructor(
    private readonly inner: Duplex,
    private readonly declared: number,
  ) {
    super();
    this.left = declared;
    inner.on('data', (chunk: Buffer) => {
      if (this.abandoned) return;
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (error: Error) => {
      this.abandoned = true;
      this.destroy(error);
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.left -= chunk.length;
    if (this.left < 0) {
      done(new PlaintextLengthExceededError(`the stream is longer than its declared plaintextLength (${this.declared})`));
      return;
    }
    if (this.inner.write(chunk)) done();
    else this.inner.once('drain', () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    this.inner.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (error && !this.abandoned) {
      this.abandoned = true;
      this.inner.resume();
      this.inner.end();
    }
    done(error);
  }
}
