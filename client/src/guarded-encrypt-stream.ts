/**
 * The library's encrypting stream, made safe to fail. Two of its failures escape as uncaught
 * exceptions, which would end the application's process:
 * - destroying it (as pipeline() does when the reader or the writer fails) makes its inner
 *   pipeline rethrow a "Premature close";
 * - writing more than a declared plaintextLength throws inside its transform.
 * This wrapper never destroys it: when this stream fails or is destroyed before the end, the inner one is ended and drained to
 * nowhere, and the message's data key is zeroed when it has ended; and it counts the declared
 * length itself, failing with a typed error first. Back-pressure passes both ways.
 */
import { Duplex } from 'node:stream';
import { PlaintextLengthExceededError } from './errors';

export class GuardedEncryptStream extends Duplex {
  private left: number;
  private abandoned = false;
  private innerEnded = false;

  /**
   * @param zeroDataKey zeroes the message's copy of the data key: called once the inner stream has
   *   ended or failed (never while it may still encrypt a frame). The library's own dispose runs only
   *   when its framing stream is destroyed, which never happens here nor on a normal end.
   */
  constructor(
    private readonly inner: Duplex,
    private readonly declared: number = Number.POSITIVE_INFINITY,
    zeroDataKey: () => void = () => undefined,
  ) {
    super();
    this.left = declared;
    inner.once('end', zeroDataKey);
    inner.once('error', zeroDataKey);
    inner.on('data', (chunk: Buffer) => {
      if (this.abandoned) return;
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => {
      this.innerEnded = true;
      this.push(null);
    });
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
    // Destroyed without an error too (a `break` out of `for await`, a plain destroy()): unless the
    // inner stream already ended, it must still be ended and drained, or its data key stays unzeroed.
    if (!this.abandoned && !this.innerEnded) {
      this.abandoned = true;
      this.inner.resume();
      this.inner.end();
    }
    done(error);
  }
}
