import { connect, type Socket } from 'node:net';

/** One HTTP/1.1 response read off a raw connection. */
export interface RawResponse {
  readonly status: number;
  /** Header values by lower-case name (the last one wins). */
  readonly headers: ReadonlyMap<string, string>;
  readonly text: string;
}

/**
 * A raw TCP connection to the service, for requests no HTTP client would send: what a test writes
 * is exactly what the server reads. Responses are read one at a time, framed by Content-Length.
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined); // a reset shows as the end of the connection
  }

  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** The next response; rejects if the connection ends before a whole one arrived. */
  async response(): Promise<RawResponse> {
    for (;;) {
      const parsed = this.take();
      if (parsed) return parsed;
      if (this.ended) throw new Error(`the connection ended without a whole response; received: ${JSON.stringify(this.buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }

  /** Resolves once the server has closed the connection. */
  async closed(): Promise<void> {
    while (!this.ended) {
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private take(): RawResponse | undefined {
    const headEnd = this.buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const [statusLine, ...lines] = this.buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? '0');
    const bodyStart = headEnd + 4;
    if (this.buffer.length < bodyStart + length) return undefined;
    const text = this.buffer.subarray(bodyStart, bodyStart + length).toString('utf8');
    this.buffer = this.buffer.subarray(bodyStart + length);
    return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]), headers, text };
  }
}

/** Sends `bytes` on a new connection and reads one response. */
export async function rawRequest(url: string, bytes: string | Buffer): Promise<RawResponse & { connection: RawConnection }> {
  const connection = await RawConnection.open(url);
  connection.write(bytes);
  try {
    return { ...(await connection.response()), connection };
  } catch (error) {
    connection.close();
    throw error;
  }
}
