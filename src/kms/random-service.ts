import { KmsError } from '../errors';
import type { Hsm } from '../hsm/hsm';
import type { GenRandomRequest, GenRandomResponse } from './api-types';

const MIN_RANDOM_BITS = 8;
const MAX_RANDOM_BITS = 8192;

/** gen-random: bytes from the HSM's random generator (C_GenerateRandom), in upper-case hex. */
export class RandomService {
  constructor(private readonly hsm: Hsm) {}

  async genRandom(request: GenRandomRequest): Promise<GenRandomResponse> {
    const random = await this.hsm.random(requestedBytes(request.random_data_length));
    try {
      return { random_data: random.toString('hex').toUpperCase() };
    } finally {
      random.fill(0);
    }
  }
}

/**
 * random_data_length is a JSON string of bits (the SDK's model types it str), 8 to 8192 and a
 * multiple of 8. The catalogue's KMS.1801 text is the API's old "must be 512 bits"; the detail
 * says what is accepted now.
 */
function requestedBytes(length: string): number {
  const bits = /^\d{1,5}$/.test(length) ? Number(length) : NaN;
  if (!(bits >= MIN_RANDOM_BITS && bits <= MAX_RANDOM_BITS)) {
    throw new KmsError('KMS.1801', { detail: `It must be ${MIN_RANDOM_BITS} to ${MAX_RANDOM_BITS} bits, a multiple of 8.` });
  }
  if (bits % 8 !== 0) throw new KmsError('KMS.1802');
  return bits / 8;
}
