// What a hook body over MAX_BODY_BYTES is answered with: the children that made it so, named
// with their sizes, and what to do about them. Secrets a tenant labels with its request's
// `controller-uid` are adopted by Metacontroller as children and sent in every hook body.

/** A child in a hook body: its group ("Kind.version"), its key ("namespace/name") and the bytes of its JSON. */
export interface ChildSize {
  group: string;
  key: string;
  bytes: number;
}

export interface OversizedBody {
  bytes: number;
  limitBytes: number;
  /** The largest children, largest first. */
  largestChildren: ChildSize[];
  childCount: number;
}

/** Bytes as people read them: 1 kB is 1,000 bytes. */
export function sizeText(bytes: number): string {
  if (bytes < 1_000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${Math.round(bytes / 1_000)} kB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

const childName = (child: ChildSize) => child.group === 'Secret.v1' ? `Secret ${child.key}` : `${child.group} ${child.key}`;

/**
 * The condition's message: the body's size against the limit, the largest children, and what
 * happened and what to do. `requestUid`: the label value that made them children; `grantNote`:
 * what the grant check found, as a sentence.
 */
export function oversizedBodyMessage(body: OversizedBody, requestUid: string, grantNote?: string): string {
  const listed = body.largestChildren.map((child) => `${childName(child)} (${sizeText(child.bytes)})`).join(', ');
  const more = body.childCount > body.largestChildren.length ? `, among ${body.childCount} children` : '';
  return [
    `the hook request is ${sizeText(body.bytes)}, over MAX_BODY_BYTES (${sizeText(body.limitBytes)}), so its children could not be read.`,
    ...(listed ? [` Largest: ${listed}${more}.`] : []),
    ` Secrets labelled controller-uid=${requestUid} that this webhook did not write are adopted as this request's children;`,
    ' nothing of them is trusted. Everything issued to this request was revoked and no Secret is kept: Metacontroller deletes the',
    ' children this answer leaves out. Do not label Secrets controller-uid; the next sync with a body under the limit mints a new',
    ' token if the grants allow it.',
    ...(grantNote ? [` ${grantNote}`] : []),
  ].join('');
}
