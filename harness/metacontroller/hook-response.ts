// How Metacontroller v4.17.2 decodes a hook's answer (pkg/hooks/webhook.go Call:
// kjson.UnmarshalStrict into the Go response type). A value of the wrong type fails the call
// in every mode (Go's UnmarshalTypeError); an unknown field fails it only in strict mode (v2's
// default). The types: CompositeHookResponse (composite/api/v2/hooks.go), CustomizeHookResponse
// (common/customize/api/v2/hooks.go) with RelatedResourceRule (apis/metacontroller/v1alpha1/
// types.go), children as *unstructured.Unstructured (apimachinery's UnmarshalJSON: a
// non-empty `kind` is required).

/**
 * A Go type as JSON decoding sees it. JSON null is accepted into any of them (Go leaves the
 * zero value), except where `nullable: false`: a nil pointer in a slice that Metacontroller
 * dereferences later (a child, a related rule).
 */
type GoType =
  | { kind: 'string' | 'float64' | 'bool' | 'map[string]interface{}' | 'unstructured' }
  | { kind: 'slice'; of: GoType }
  | { kind: 'map[string]string' }
  | { kind: 'struct'; name: string; fields: Record<string, GoType>; nullable?: false };

const string: GoType = { kind: 'string' };
const labelSelector: GoType = {
  kind: 'struct', name: 'LabelSelector', fields: {
    matchLabels: { kind: 'map[string]string' },
    matchExpressions: { kind: 'slice', of: { kind: 'struct', name: 'LabelSelectorRequirement', fields: { key: string, operator: string, values: { kind: 'slice', of: string } } } },
  },
};
const relatedResourceRule: GoType = {
  kind: 'struct', name: 'RelatedResourceRule', nullable: false, fields: {
    apiVersion: string, resource: string, labelSelector, namespaceSelector: labelSelector, namespace: string, names: { kind: 'slice', of: string },
  },
};
const compositeHookResponse: GoType = {
  kind: 'struct', name: 'CompositeHookResponse', fields: {
    status: { kind: 'map[string]interface{}' },
    children: { kind: 'slice', of: { kind: 'unstructured' } },
    resyncAfterSeconds: { kind: 'float64' },
    finalized: { kind: 'bool' },
  },
};
const responseTypes: Record<string, GoType> = {
  customize: { kind: 'struct', name: 'CustomizeHookResponse', fields: { relatedResources: { kind: 'slice', of: relatedResourceRule } } },
  sync: compositeHookResponse,
  finalize: compositeHookResponse,
};

const jsonKind = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'boolean' ? 'bool' : typeof value;

export interface AnswerProblems {
  /** Wrong types: the call fails whatever the unmarshal mode. */
  typeErrors: string[];
  /** Unknown fields: the call fails in strict mode. */
  unknownFields: string[];
}

/** What Go's decoding of `body` into the hook's response type reports. */
export function answerProblems(hookName: string, body: unknown): AnswerProblems {
  const problems: AnswerProblems = { typeErrors: [], unknownFields: [] };
  const type = responseTypes[hookName];
  if (!type) throw new Error(`no response type for hook ${hookName}`);
  // The top level is a pointer to the struct: Go would read `null` as an empty answer; the
  // driver refuses it, as no answer of ours is null.
  if (body === null) problems.typeErrors.push('the answer is null');
  else check(body, type, '', problems);
  return problems;
}

function check(value: unknown, type: GoType, path: string, problems: AnswerProblems): void {
  const mismatch = (goType: string) =>
    problems.typeErrors.push(`cannot unmarshal ${jsonKind(value)} into ${path || 'the answer'} of type ${goType}`);
  if (value === null) {
    if (type.kind === 'unstructured' || (type.kind === 'struct' && type.nullable === false)) mismatch(`*${type.kind === 'struct' ? type.name : 'unstructured.Unstructured'} (null)`);
    return;
  }
  switch (type.kind) {
    case 'string':
      if (typeof value !== 'string') mismatch('string');
      return;
    case 'float64':
      if (typeof value !== 'number') mismatch('float64');
      return;
    case 'bool':
      if (typeof value !== 'boolean') mismatch('bool');
      return;
    case 'map[string]interface{}':
      if (jsonKind(value) !== 'object') mismatch(type.kind);
      return;
    case 'map[string]string':
      if (jsonKind(value) !== 'object') return void mismatch(type.kind);
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) check(inner, string, `${path}.${key}`, problems);
      return;
    case 'slice':
      if (!Array.isArray(value)) return void mismatch(`[]${type.of.kind === 'struct' ? type.of.name : type.of.kind}`);
      value.forEach((item, index) => check(item, type.of, `${path}[${index}]`, problems));
      return;
    case 'unstructured': {
      if (jsonKind(value) !== 'object') return void mismatch('unstructured.Unstructured');
      const object = value as { kind?: unknown; apiVersion?: unknown };
      // GroupVersionKind(): an apiVersion with more than one "/" does not parse, and reads as no kind at all.
      const badApiVersion = typeof object.apiVersion === 'string' && object.apiVersion.split('/').length > 2;
      if (typeof object.kind !== 'string' || object.kind === '' || badApiVersion) problems.typeErrors.push(`${path}: Object 'Kind' is missing`);
      return;
    }
    case 'struct':
      if (jsonKind(value) !== 'object') return void mismatch(type.name);
      for (const [field, inner] of Object.entries(value as Record<string, unknown>)) {
        const fieldType = type.fields[field];
        if (fieldType) check(inner, fieldType, `${path}${path ? '.' : ''}${field}`, problems);
        else problems.unknownFields.push(`unknown field "${path}${path ? '.' : ''}${field}"`);
      }
  }
}
