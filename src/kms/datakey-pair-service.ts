import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { KmsError } from '../errors';
import type { CreateEcDatakeyPairRequest, CreateRsaDatakeyPairRequest, DatakeyPairResponse } from './api-types';
import type { RequestContext } from './context';
import { base64BlobToText } from './data-blob-codec';
import type { KeyService } from './key-service';
import { checkedBinding, type Sealer } from './sealing';
import { WorkSlots } from './work-slots';

const generate = promisify(generateKeyPair);

/**
 * Key pairs generated at once. OpenSSL's prime search runs on libuv's thread pool (an RSA_4096
 * pair takes seconds), which asynchronous HSM calls and the audit log's writes share: however many
 * pairs are asked for at once, the others wait, and those threads stay free.
 */
export const MAX_CONCURRENT_GENERATIONS = 2;

/** A data key pair's spec as the API names it, and how OpenSSL makes one. */
type PairSpec = { readonly type: 'rsa'; readonly modulusLength: number } | { readonly type: 'ec'; readonly namedCurve: string };

/**
 * The specs of each operation, as the SDK models name them. Maps, not objects: key_spec is the
 * client's string, and "constructor" must not find Object.prototype's.
 */
const RSA_SPECS: ReadonlyMap<string, PairSpec> = new Map([
  ['RSA_2048', { type: 'rsa', modulusLength: 2048 }],
  ['RSA_3072', { type: 'rsa', modulusLength: 3072 }],
  ['RSA_4096', { type: 'rsa', modulusLength: 4096 }],
]);
const EC_SPECS: ReadonlyMap<string, PairSpec> = new Map([
  ['ECC_NIST_P256', { type: 'ec', namedCurve: 'prime256v1' }],
  ['ECC_NIST_P384', { type: 'ec', namedCurve: 'secp384r1' }],
  ['ECC_NIST_P521', { type: 'ec', namedCurve: 'secp521r1' }],
  ['ECC_SECG_P256K1', { type: 'ec', namedCurve: 'secp256k1' }],
]);

export interface DataKeyPairServiceDeps {
  readonly keys: KeyService;
  readonly sealer: Sealer;
}

/**
 * create-rsa-datakey-pair and create-ec-datakey-pair: a key pair for use outside the service, its
 * private key sealed under an AES_256 CMK (any other key is refused as every sealing operation
 * refuses it: KMS.0325 for a key pair, KMS.0341 for an HMAC key).
 *
 * The pair is made here by Node's crypto (OpenSSL), not in the HSM: the private key leaves by
 * design, and a token would have to make it an extractable, non-sensitive object and hand out its
 * components, which a FIPS-mode HSM refuses, and which NSS cannot do for secp256k1 at all; one
 * vetted generator serves every module alike (README, "How keys are kept"). The HSM seals it.
 *
 * `public_key` is base64 of the DER SubjectPublicKeyInfo, `private_key_plain_text` base64 of the
 * DER PKCS#8 (left out when with_plain_text is false), and `private_key_cipher_text` a private-key
 * blob (data-blob-codec.ts) bound to additional_authenticated_data, which decrypt-data opens back to
 * that very text. The audit record names the CMK and the key_spec, never a key of the pair.
 */
export class DataKeyPairService {
  private readonly generations = new WorkSlots(MAX_CONCURRENT_GENERATIONS);

  constructor(private readonly deps: DataKeyPairServiceDeps) {}

  createRsaDataKeyPair(ctx: RequestContext, request: CreateRsaDatakeyPairRequest): Promise<DatakeyPairResponse> {
    return this.create(ctx, request, RSA_SPECS);
  }

  createEcDataKeyPair(ctx: RequestContext, request: CreateEcDatakeyPairRequest): Promise<DatakeyPairResponse> {
    return this.create(ctx, request, EC_SPECS);
  }

  private async create(ctx: RequestContext, request: CreateRsaDatakeyPairRequest, specs: ReadonlyMap<string, PairSpec>): Promise<DatakeyPairResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
    const spec = specs.get(request.key_spec);
    if (spec === undefined) {
      if (request.key_spec === 'SM2') throw new KmsError('KMS.0308', { detail: 'key_spec: SM2 needs vendor (SM) mechanisms that this service does not have.' });
      // The client's value is not echoed (error messages never repeat the request): the accepted ones are named instead.
      throw new KmsError('KMS.0308', { detail: `key_spec: must be one of ${[...specs.keys()].join(', ')}.` });
    }
    ctx.actedOn.keySpec = request.key_spec;
    const binding = checkedBinding(undefined, request.additional_authenticated_data);

    const pair = await this.generations.run(() => generatePair(spec));
    // The sealed text is the response's own spelling of the private key (see data-blob-codec.ts).
    const privateText = pair.privateKey.toString('base64');
    pair.privateKey.fill(0);
    const plaintext = Buffer.from(privateText, 'utf8');
    try {
      const blob = await this.deps.sealer.seal(ctx, 'privateKey', key, plaintext, binding);
      return {
        key_id: key.keyId,
        key_spec: request.key_spec,
        public_key: pair.publicKey.toString('base64'),
        private_key_cipher_text: base64BlobToText({ purpose: 'privateKey', blob }),
        ...(request.with_plain_text === false ? {} : { private_key_plain_text: privateText }),
      };
    } finally {
      plaintext.fill(0);
    }
  }
}

/** A fresh key pair: DER SubjectPublicKeyInfo and DER PKCS#8 (the caller wipes the latter). */
async function generatePair(spec: PairSpec): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
  const pair = spec.type === 'rsa' ? await generate('rsa', { modulusLength: spec.modulusLength, publicExponent: 0x10001 }) : await generate('ec', { namedCurve: spec.namedCurve });
  return { publicKey: pair.publicKey.export({ type: 'spki', format: 'der' }), privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'der' }) };
}
