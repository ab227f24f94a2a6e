// Metacontroller's CompositeController kind, which its own install serves before ours: a
// stand-in CRD that keeps any spec (the shape of the chart's CompositeController is checked
// against Metacontroller's types by readCompositeController). For tests that install the
// chart or its render without Metacontroller.
export const compositeControllerCrd = {
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: {
    name: 'compositecontrollers.metacontroller.k8s.io',
    // *.k8s.io groups need it; Metacontroller's own CRDs say the same.
    annotations: { 'api-approved.kubernetes.io': 'unapproved, request not yet submitted' },
  },
  spec: {
    group: 'metacontroller.k8s.io', scope: 'Cluster',
    names: { plural: 'compositecontrollers', singular: 'compositecontroller', kind: 'CompositeController', listKind: 'CompositeControllerList' },
    versions: [{
      name: 'v1alpha1', served: true, storage: true, subresources: { status: {} },
      schema: { openAPIV3Schema: { type: 'object', properties: {
        spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      } } },
    }],
  },
};

export const compositeControllerPath = '/apis/metacontroller.k8s.io/v1alpha1/compositecontrollers/dpuservicecredentialrequest-controller';
