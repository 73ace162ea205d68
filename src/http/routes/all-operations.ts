import type { AliasService } from '../../kms/alias-service';
import type { DataKeyService } from '../../kms/datakey-service';
import type { GrantService } from '../../kms/grant-service';
import type { KeyService } from '../../kms/key-service';
import type { QuotaService } from '../../kms/quota-service';
import type { RotationService } from '../../kms/rotation-service';
import { DOCS_ROUTES } from '../docs-routes';
import { HEALTH_ROUTES } from '../health-routes';
import { METRICS_ROUTE } from '../metrics-route';
import type { Operation, PublicRoute } from '../operation';
import { aliasOperations } from './aliases';
import { dataOperations, type DataOperationsDeps } from './data';
import { dataKeyOperations } from './datakeys';
import { grantOperations } from './grants';
import { keyOperations } from './keys';
import { quotaOperations } from './quotas';
import { rotationOperations } from './rotation';
import { signingOperations } from './signing';
import type { SigningService } from '../../kms/signing-service';
import { macOperations } from './mac';
import type { MacService } from '../../kms/mac-service';
import { keyAgreementOperations } from './key-agreement';
import type { KeyAgreementService } from '../../kms/key-agreement-service';
import { dataKeyPairOperations } from './datakey-pairs';
import type { DataKeyPairService } from '../../kms/datakey-pair-service';
import { tagOperations } from './tags';
import type { TagService } from '../../kms/tag-service';
import { importOperations } from './imports';
import type { ImportService } from '../../kms/import-service';

/** The services the API's operations call. */
export interface OperationServices {
  readonly keys: KeyService;
  readonly dataKeys: DataKeyService;
  /** encrypt-data, decrypt-data, gen-random, re-encrypt. */
  readonly dataOperations: DataOperationsDeps;
  readonly grants: GrantService;
  readonly quotas: QuotaService;
  readonly rotation: RotationService;
  /** sign, verify, get-publickey. */
  readonly signing: SigningService;
  /** generate-mac, verify-mac. */
  readonly macs: MacService;
  /** derive-shared-secret. */
  readonly keyAgreement: KeyAgreementService;
  /** create-alias, list-aliases, associate-alias, delete-alias. */
  readonly aliases: AliasService;
  /** create-rsa-datakey-pair, create-ec-datakey-pair. */
  readonly dataKeyPairs: DataKeyPairService;
  /** The six tag operations. */
  readonly tags: TagService;
  /** get-parameters-for-import, import-key-material, delete-imported-key-material. */
  readonly imports: ImportService;
}

/** Every operation of the API, the one list the app serves and checks against openapi.yaml. */
export function allOperations(services: OperationServices): Operation[] {
  return [
    ...keyOperations(services.keys),
    ...dataKeyOperations(services.dataKeys),
    ...dataOperations(services.dataOperations),
    ...grantOperations(services.grants),
    ...quotaOperations(services.quotas),
    ...rotationOperations(services.rotation),
    ...signingOperations(services.signing),
    ...macOperations(services.macs),
    ...keyAgreementOperations(services.keyAgreement),
    ...aliasOperations(services.aliases),
    ...dataKeyPairOperations(services.dataKeyPairs),
    ...tagOperations(services.tags),
    ...importOperations(services.imports),
  ];
}

/**
 * The routes served without the API's credential: the health probes, the contract and its page,
 * and GET /metrics with its own token. They stay in the contract when turned off: it describes
 * what the service can serve.
 */
export const PUBLIC_ROUTES: readonly PublicRoute[] = [...HEALTH_ROUTES, ...DOCS_ROUTES, METRICS_ROUTE];
