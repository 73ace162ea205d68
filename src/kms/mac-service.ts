import { KmsError } from '../errors';
import type { Hsm, MacAlgorithm } from '../hsm/hsm';
import type { ApiMacAlgorithm, GenerateMacRequest, GenerateMacResponse, VerifyMacRequest, VerifyMacResponse } from './api-types';
import type { RequestContext } from './context';
import type { KeyService } from './key-service';
import type { KeyRecord } from '../domain/keys';
import { MAC_MECHANISMS } from '../hsm/key-kinds/hmac';
import { currentMaterial, recordFamily } from './key-specs';
import { strictBase64 } from './strict-base64';

/** The message is 1 to 4096 bytes, as the SDK's model has it. */
const MAX_MESSAGE_BYTES = 4096;

export interface MacServiceDeps {
  readonly keys: KeyService;
  readonly hsm: Hsm;
}

/**
 * generate-mac and verify-mac with HMAC keys that never leave the HSM. The key must be an enabled
 * HMAC key made for GENERATE_VERIFY_MAC (key-purpose.ts), and mac_algorithm the one its size
 * takes, both checked before the HSM is asked. A MAC is checked by the HSM's MAC role (made again
 * in the token, compared in constant time). The audit record names the key and the algorithm
 * (ctx.actedOn), never the message or the MAC.
 */
export class MacService {
  constructor(private readonly deps: MacServiceDeps) {}

  async generateMac(ctx: RequestContext, request: GenerateMacRequest): Promise<GenerateMacResponse> {
    const { ref, algorithm, message } = await this.macInput(ctx, request);
    const mac = await this.deps.hsm.mac.generateMac(ref, algorithm.algorithm, message);
    // Upper-case hex, as the service answers every hex field (create-datakey, gen-random).
    return { key_id: ref.keyId, mac_algorithm: request.mac_algorithm, mac: mac.toString('hex').toUpperCase() };
  }

  async verifyMac(ctx: RequestContext, request: VerifyMacRequest): Promise<VerifyMacResponse> {
    const { ref, algorithm, message } = await this.macInput(ctx, request);
    // The schema checked the hex; its length is the algorithm's, public, so a MAC of another length is refused, not "false".
    const mac = Buffer.from(request.mac, 'hex');
    if (mac.length !== algorithm.bytes) {
      throw new KmsError('KMS.0308', { detail: `mac: ${request.mac_algorithm} MACs are ${algorithm.bytes} bytes (${algorithm.bytes * 2} hex digits).` });
    }
    const valid = await this.deps.hsm.mac.verifyMac(ref, algorithm.algorithm, message, mac);
    // A JSON boolean, as the SDK's model types it (unlike verify's signature_valid, a string).
    return { key_id: ref.keyId, mac_algorithm: request.mac_algorithm, mac_valid: valid };
  }

  private async macInput(ctx: RequestContext, request: GenerateMacRequest | VerifyMacRequest) {
    const record = await this.deps.keys.usableKey(ctx, request.key_id, 'mac');
    ctx.actedOn.algorithm = request.mac_algorithm;
    const algorithm = algorithmFor(record, request.mac_algorithm);
    const message = strictBase64(request.message);
    if (message === undefined || message.length < 1 || message.length > MAX_MESSAGE_BYTES) {
      throw new KmsError('KMS.0308', { detail: `message must be base64 of 1 to ${MAX_MESSAGE_BYTES} bytes.` });
    }
    return { ref: currentMaterial(record), algorithm, message };
  }
}

/** The key's algorithm, when the request names it; HMAC_SM3 (no module here has SM3) or another size's is KMS.0308. */
function algorithmFor(record: KeyRecord, requested: ApiMacAlgorithm): { algorithm: MacAlgorithm; bytes: number } {
  if (requested === 'HMAC_SM3') {
    throw new KmsError('KMS.0308', { detail: 'mac_algorithm: HMAC_SM3 needs vendor (SM3) mechanisms that this service\'s HSM does not have.' });
  }
  // The one algorithm of the key's kind, and its MAC's length in bytes (the hash's output).
  const family = recordFamily(record);
  // A record checked for 'mac' is an HMAC key create-key made: another is the service's fault.
  if (family.name !== 'HMAC') throw new KmsError('KMS.0103', { cause: new Error(`key ${record.keyId} has spec ${record.keySpec}, which no MAC algorithm serves`) });
  const algorithm = { algorithm: family.mac, bytes: MAC_MECHANISMS[family.mac].bytes };
  if (algorithm.algorithm !== requested) {
    throw new KmsError('KMS.0308', { detail: `mac_algorithm: key ${record.keyId} is ${record.keySpec}, whose MACs are ${algorithm.algorithm}.` });
  }
  return algorithm;
}
