// The shape every way of reaching an API server comes down to (connection.ts for the host,
// kubeconfig.ts for a DPUCluster's admin kubeconfig), and the one way both readers build it;
// its own module, so neither imports the other for it.

/** One API server and the credentials to call it with. Holds keys and tokens: never log it. */
export interface ClusterConnection {
  /** https://host[:port] (http:// only from a trusted kubeconfig), without a trailing slash. */
  server: string;
  /** The CA that signed the server's certificate; absent: the system's CAs. */
  caPem?: string;
  /** The name the server's certificate is checked against, when it is not the server's host. */
  tlsServerName?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Only a trusted (host) kubeconfig can ask for it. */
  insecureSkipTlsVerify?: boolean;
  /**
   * The bearer token for the next call, if the user has one; called per call, so it may rotate.
   * `reread`: the server refused the last one (401): a token read from a file is read again now.
   */
  bearerToken?: (reread?: boolean) => string;
}

/** What a kubeconfig reader accepted from the current cluster and user, each reader by its own rules. */
export interface AcceptedCredentials {
  caPem?: string | undefined;
  clientCertPem?: string | undefined;
  clientKeyPem?: string | undefined;
  insecureSkipTlsVerify?: boolean;
  bearerToken?: ((reread?: boolean) => string) | undefined;
}

/** The connection both kubeconfig readers build: the server, its tls-server-name, and what they accepted (a certificate only with its key). */
export function clusterConnectionOf(server: string, cluster: Record<string, unknown>, accepted: AcceptedCredentials): ClusterConnection {
  const tlsServerName = typeof cluster['tls-server-name'] === 'string' && cluster['tls-server-name'] ? cluster['tls-server-name'] : undefined;
  const { caPem, clientCertPem, clientKeyPem, bearerToken } = accepted;
  return {
    server,
    ...(caPem !== undefined ? { caPem } : {}),
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(clientCertPem !== undefined && clientKeyPem !== undefined ? { clientCertPem, clientKeyPem } : {}),
    ...(accepted.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
    ...(bearerToken ? { bearerToken } : {}),
  };
}
