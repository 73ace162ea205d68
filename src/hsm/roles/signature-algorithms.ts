import * as pkcs11 from 'pkcs11js';
import type { SigningAlgorithm } from '../hsm';
import type { MechanismChoice, MechanismNeed } from '../key-kinds/key-kind';

/** PKCS#11 3.0's EdDSA mechanism; pkcs11js (2.40) does not name it. */
export const CKM_EDDSA = 0x1057;

/** The key family an algorithm needs. */
export type SignatureFamily = 'RSA' | 'EC' | 'EDWARDS';

export type HashName = 'sha256' | 'sha384' | 'sha512';

/** How the token signs for one algorithm. */
export interface SignatureAlgorithm {
  readonly family: SignatureFamily;
  /** The hash (none for pure EdDSA, which signs the message itself). */
  readonly hash?: { readonly name: HashName; readonly bytes: number };
  /** The mechanism that hashes and signs in the token (CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA_SHA256), for a RAW message. */
  readonly combined?: MechanismNeed;
  /** The mechanism that signs what the service gives it: a digest (the service hashed), or EdDSA's message. */
  readonly direct: MechanismNeed;
  /** The mechanism parameter (RSA-PSS's hash, MGF and salt length; the same for the combined and the digest mechanism). */
  readonly parameter?: pkcs11.RsaPSS;
  /** What the digest mechanism signs for a digest (RSA PKCS#1 v1.5 signs the DigestInfo, CKM_RSA_PKCS adds only the padding). */
  readonly digestInput?: (digest: Buffer) => Buffer;
}

const SIGN_VERIFY = pkcs11.CKF_SIGN | pkcs11.CKF_VERIFY;

function need(type: number, name: string): MechanismNeed {
  return { type, name, flags: SIGN_VERIFY };
}

const HASHES = {
  sha256: { name: 'sha256', bytes: 32, mechanism: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256 },
  sha384: { name: 'sha384', bytes: 48, mechanism: pkcs11.CKM_SHA384, mgf: pkcs11.CKG_MGF1_SHA384 },
  sha512: { name: 'sha512', bytes: 64, mechanism: pkcs11.CKM_SHA512, mgf: pkcs11.CKG_MGF1_SHA512 },
} as const;

/** The DER DigestInfo prefix of each hash (RFC 8017 §9.2, note 1), before the digest. */
const DIGEST_INFO: Readonly<Record<HashName, Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash (what Huawei's and AWS's KMS use). */
function pss(hash: HashName, combined: number, combinedName: string): SignatureAlgorithm {
  const h = HASHES[hash];
  return {
    family: 'RSA',
    hash: { name: h.name, bytes: h.bytes },
    combined: need(combined, combinedName),
    direct: need(pkcs11.CKM_RSA_PKCS_PSS, 'CKM_RSA_PKCS_PSS'),
    parameter: { type: pkcs11.CK_PARAMS_RSA_PSS, hashAlg: h.mechanism, mgf: h.mgf, saltLen: h.bytes },
  };
}

function pkcs1(hash: HashName, combined: number, combinedName: string): SignatureAlgorithm {
  const h = HASHES[hash];
  return {
    family: 'RSA',
    hash: { name: h.name, bytes: h.bytes },
    combined: need(combined, combinedName),
    direct: need(pkcs11.CKM_RSA_PKCS, 'CKM_RSA_PKCS'),
    digestInput: (digest) => Buffer.concat([DIGEST_INFO[hash], digest]),
  };
}

function ecdsa(hash: HashName, combined: number, combinedName: string): SignatureAlgorithm {
  const h = HASHES[hash];
  return { family: 'EC', hash: { name: h.name, bytes: h.bytes }, combined: need(combined, combinedName), direct: need(pkcs11.CKM_ECDSA, 'CKM_ECDSA') };
}

export const SIGNATURE_ALGORITHMS: Readonly<Record<SigningAlgorithm, SignatureAlgorithm>> = {
  RSASSA_PSS_SHA_256: pss('sha256', pkcs11.CKM_SHA256_RSA_PKCS_PSS, 'CKM_SHA256_RSA_PKCS_PSS'),
  RSASSA_PSS_SHA_384: pss('sha384', pkcs11.CKM_SHA384_RSA_PKCS_PSS, 'CKM_SHA384_RSA_PKCS_PSS'),
  RSASSA_PSS_SHA_512: pss('sha512', pkcs11.CKM_SHA512_RSA_PKCS_PSS, 'CKM_SHA512_RSA_PKCS_PSS'),
  RSASSA_PKCS1_V1_5_SHA_256: pkcs1('sha256', pkcs11.CKM_SHA256_RSA_PKCS, 'CKM_SHA256_RSA_PKCS'),
  RSASSA_PKCS1_V1_5_SHA_384: pkcs1('sha384', pkcs11.CKM_SHA384_RSA_PKCS, 'CKM_SHA384_RSA_PKCS'),
  RSASSA_PKCS1_V1_5_SHA_512: pkcs1('sha512', pkcs11.CKM_SHA512_RSA_PKCS, 'CKM_SHA512_RSA_PKCS'),
  ECDSA_SHA_256: ecdsa('sha256', pkcs11.CKM_ECDSA_SHA256, 'CKM_ECDSA_SHA256'),
  ECDSA_SHA_384: ecdsa('sha384', pkcs11.CKM_ECDSA_SHA384, 'CKM_ECDSA_SHA384'),
  ECDSA_SHA_512: ecdsa('sha512', pkcs11.CKM_ECDSA_SHA512, 'CKM_ECDSA_SHA512'),
  EDDSA: { family: 'EDWARDS', direct: need(CKM_EDDSA, 'CKM_EDDSA') },
};

/** The algorithms of a family, in the table's order. */
export function algorithmsOf(family: SignatureFamily): SigningAlgorithm[] {
  return (Object.keys(SIGNATURE_ALGORITHMS) as SigningAlgorithm[]).filter((name) => SIGNATURE_ALGORITHMS[name].family === family);
}

/**
 * What SIGN_VERIFY needs for these algorithms: each one's combined mechanism or the one that signs
 * a digest (a key size, in bits, where the kind has one).
 */
export function signingNeeds(family: SignatureFamily, keyBits?: number): MechanismChoice[] {
  return algorithmsOf(family).map((name) => {
    const algorithm = SIGNATURE_ALGORITHMS[name];
    const sized = (mechanism: MechanismNeed): MechanismNeed => (keyBits === undefined ? mechanism : { ...mechanism, keySize: keyBits });
    return algorithm.combined ? [sized(algorithm.combined), sized(algorithm.direct)] : [sized(algorithm.direct)];
  });
}
