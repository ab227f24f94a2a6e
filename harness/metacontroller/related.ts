// Which objects a customize rule selects (pkg/controller/common/customize/manager.go
// determineSelectionType and GetRelatedObjects, v4.17.2, v2 hooks), and label selectors as
// apimachinery's LabelSelectorAsSelector reads them.

export interface LabelSelector {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: { key: string; operator: string; values?: string[] | null }[] | null;
}

/** v1alpha1.RelatedResourceRule as decoded (hook-response.ts has already checked its types). */
export interface RelatedRule {
  apiVersion: string;
  resource: string;
  labelSelector?: LabelSelector | null;
  namespaceSelector?: LabelSelector | null;
  namespace?: string | null;
  names?: string[] | null;
}

/**
 * What a rule lists: `namespace` '' means every namespace (listObjects: a namespace only
 * when the rule names one, whatever the parent's), then the objects the selector matches,
 * and, with `names`, only those names.
 */
export interface Selection {
  namespace: string;
  matches: (labels: Record<string, string>) => boolean;
  names?: string[];
}

/** determineSelectionType(): the rule's selection, or the error Metacontroller fails the sync with. */
export function selectionOf(rule: RelatedRule): Selection {
  const hasLabelSelector = rule.labelSelector != null;
  const hasNamespaceSelector = rule.namespaceSelector != null;
  const namespace = rule.namespace ?? '';
  const names = rule.names ?? [];
  if (names.length > 0 && (hasLabelSelector || hasNamespaceSelector)) {
    throw new Error('related rule cannot have both names and labelSelector/namespaceSelector specified');
  }
  if (namespace && hasNamespaceSelector) throw new Error('related rule cannot have both namespace and namespaceSelector specified');
  if (hasNamespaceSelector) throw new Error('namespaceSelector in a related rule is not modelled by this driver');
  if (names.length > 0 || (namespace && !hasLabelSelector)) return { namespace, matches: () => true, ...(names.length ? { names } : {}) };
  return { namespace, matches: selectorMatcher(rule.labelSelector ?? undefined) };
}

/** metav1.LabelSelectorAsSelector, then Matches; no selector selects everything. */
export function selectorMatcher(selector: LabelSelector | undefined): (labels: Record<string, string>) => boolean {
  if (!selector) return () => true;
  const requirements: ((labels: Record<string, string>) => boolean)[] = Object.entries(selector.matchLabels ?? {})
    .map(([key, value]) => (labels) => labels[key] === value);
  for (const { key, operator, values } of selector.matchExpressions ?? []) {
    const list = values ?? [];
    switch (operator) {
      case 'In':
      case 'NotIn':
        if (list.length === 0) throw new Error(`values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty`);
        requirements.push(operator === 'In'
          ? (labels) => key in labels && list.includes(labels[key]!)
          : (labels) => !(key in labels) || !list.includes(labels[key]!));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (list.length > 0) throw new Error(`values: Invalid value: ${JSON.stringify(list)}: values set must be empty for exists and does not exist`);
        requirements.push(operator === 'Exists' ? (labels) => key in labels : (labels) => !(key in labels));
        break;
      default:
        throw new Error(`"${operator}" is not a valid label selector operator`);
    }
  }
  return (labels) => requirements.every((requirement) => requirement(labels));
}
