import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../identity/authenticator';

/**
 * What the TLS handshake made of the client's certificate. With mTLS the server asks for one
 * (`requestCert`) but does not refuse the handshake without it (`rejectUnauthorized: false`, see
 * src/tls/tls-server.ts): the request then gets the API's 401 body and an audit record, and the
 * health probes, which need no credential, need no certificate either.
 */
export function clientCertificateOf(socket: Socket): ClientCertificate {
  if (!(socket instanceof TLSSocket)) return 'none';
  // The certificate first: on a resumed TLS 1.3 session of a client that never sent one, Node
  // reports `authorized` (OpenSSL verified nothing and found nothing wrong). Null once the
  // connection is gone.
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return 'none';
  // Verified by OpenSSL against the client CAs only: a chain to one of them, within its dates.
  return socket.authorized ? 'trusted' : 'untrusted';
}
