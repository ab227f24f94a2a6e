// Text checks on what a kubeconfig holds. Its text is untrusted (a DPUCluster's kubeconfig
// Secret is whoever may write it): every check here is one pass over the text, never a
// regular expression that can backtrack. `/\/+$/` and `/^[A-Za-z0-9+/\s]*={0,2}\s*$/`,
// which these replace, take time quadratic in a run of slashes or spaces that is not at the
// end: 700,000 spaces in certificate-authority-data blocked the event loop for minutes.

/** `text` without the slashes it ends with: `https://host:6443/` is `https://host:6443`. */
export function withoutTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end--;
  return text.slice(0, end);
}

const isBase64Character = (code: number) =>
  (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2b || code === 0x2f;

/** The white space a kubeconfig's base64 may be wrapped with: space, tab, CR, LF, VT, FF. */
const isSpace = (code: number) => code === 0x20 || (code >= 0x09 && code <= 0x0d);

/**
 * Whether `text` is standard base64, possibly wrapped over several lines: its alphabet and
 * white space, then at most two `=` and white space.
 */
export function isWrappedBase64(text: string): boolean {
  let padding = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isSpace(code)) continue;
    if (code === 0x3d) {
      padding++;
      if (padding > 2) return false;
    } else if (padding > 0 || !isBase64Character(code)) {
      return false;
    }
  }
  return true;
}
