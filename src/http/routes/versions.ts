import type { ApiVersionDetail } from '../../kms/api-types';
import { publicDocument, type DocumentRequest, type PublicDocument } from '../operation';

/**
 * The version documents (`GET /`, `GET /v1.0`), as Huawei Cloud KMS answers them: one version,
 * v1.0, current since the API's release, without micro-versions. Read without a credential.
 */
function v1(request: DocumentRequest): ApiVersionDetail {
  return {
    id: 'v1.0',
    links: [{ href: `${request.baseUrl}/v1.0/`, rel: 'self' }],
    version: '',
    status: 'CURRENT',
    updated: '2018-09-05T08:18:05Z',
    min_version: '',
  };
}

/** `GET /v1.0/` too: the address the version list links to, as the API's own example does. */
export function versionDocuments(): PublicDocument[] {
  return [
    publicDocument('/', (request) => ({ versions: [v1(request)] })),
    publicDocument('/v1.0', (request) => ({ version: v1(request) })),
    publicDocument('/v1.0/', (request) => ({ version: v1(request) })),
  ];
}
