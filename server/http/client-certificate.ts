// Hook authentication by client certificate (Metacontroller's clientTLS, v4.16+): the TLS
// handshake asked for one and checked it against TLS_CLIENT_CA_FILE; a hook request whose
// connection did not present a valid one is refused. Probes and scrapers connect without.
import type { NextFunction, Request, Response } from 'express';
import type { TLSSocket } from 'node:tls';

export function clientCertificateAuth() {
  return (req: Request, res: Response, next: NextFunction) => {
    if ((req.socket as TLSSocket).authorized === true) {
      next();
      return;
    }
    res.status(401).json({ error: 'a client certificate signed by the configured CA is required' });
  };
}
