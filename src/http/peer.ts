import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../identity/authenticator';
import { clientCertificateOf } from './client-certificate';

/**
 * Who is at the other end of a request's connection, taken when the request arrives (the
 * exchange's, src/http/request-log.ts) and not when its audit record is built: by then the client
 * may have reset the connection, and the socket no longer says (its address reads undefined, its
 * certificate null), while the operation it asked for still runs and is audited.
 */
export interface Peer {
  /** The socket's remote address (not a header a client could set); null once the connection is gone. */
  readonly address: string | null;
  readonly certificate: ClientCertificate;
}

export function peerOf(socket: Socket): Peer {
  return { address: socket.remoteAddress ?? null, certificate: clientCertificateOf(socket) };
}

/**
 * Reads each connection's remote address as soon as it is accepted (and a TLS connection's once
 * its handshake is done), for net.Socket keeps the address the first time it is read. Read only
 * when a request arrives, it can already be gone: once the kernel has taken the client's reset it
 * no longer tells the peer's address (getpeername fails), while the request the client sent just
 * before is still there to be read and served.
 */
export function notePeerAddresses(server: Server | HttpsServer): void {
  const note = (socket: Socket): void => void socket.remoteAddress;
  server.on('connection', note);
  // A TLS socket asks the kernel itself, and keeps its own copy: the raw socket's is not its.
  if (server instanceof TlsServer) server.on('secureConnection', (socket: TLSSocket) => note(socket));
}
