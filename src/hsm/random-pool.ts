/**
 * Bytes from the HSM's random generator, fetched in blocks. A data key and an IV need 44 bytes;
 * asking the HSM for them one call at a time costs a PKCS#11 round trip each (about a millisecond on
 * a network HSM), so the pool asks for a block and hands out slices, each used once and wiped.
 */
export class RandomPool {
  private block: Buffer = Buffer.alloc(0);
  private offset = 0;
  private refilling: Promise<void> | undefined;

  constructor(
    private readonly generate: (length: number) => Promise<Buffer>,
    private readonly blockSize = 4096,
  ) {}

  async take(length: number): Promise<Buffer> {
    for (;;) {
      const bytes = this.takeNow(length);
      if (bytes) return bytes;
      this.refilling ??= this.refill(length).finally(() => {
        this.refilling = undefined;
      });
      await this.refilling;
    }
  }

  /** `length` bytes from the block in hand, or undefined when it has too few (then {@link take} refills it). */
  takeNow(length: number): Buffer | undefined {
    if (this.block.length - this.offset < length) return undefined;
    const out = Buffer.from(this.block.subarray(this.offset, this.offset + length));
    this.block.fill(0, this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  private async refill(atLeast: number): Promise<void> {
    const fresh = await this.generate(Math.max(this.blockSize, atLeast));
    this.block.fill(0);
    this.block = fresh;
    this.offset = 0;
  }
}
