/** RFC 3339 in whole seconds, as metav1.Time serialises. */
export const rfc3339 = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
