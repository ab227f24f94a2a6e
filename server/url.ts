// A URL from text, or undefined for text that is not one: what the settings, the kubeconfig
// readers and the proxy variables each need before their own checks (URL.parse, which does
// this, comes only with Node 22; the engines field allows 20).
export function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
