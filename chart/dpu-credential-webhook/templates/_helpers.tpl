{{/* The app.kubernetes.io/name label and the selector. */}}
{{- define "dcw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: the release name when it contains the chart name, else release-chart. */}}
{{- define "dcw.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "dcw.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dcw.namespace" -}}{{ .Release.Namespace }}{{- end -}}
{{- define "dcw.caSecret" -}}{{ include "dcw.fullname" . }}-ca{{- end -}}
{{- define "dcw.tlsSecret" -}}{{ include "dcw.fullname" . }}-tls{{- end -}}
{{- define "dcw.tokenSecret" -}}{{ include "dcw.fullname" . }}-hook-token{{- end -}}
{{/* The host Metacontroller calls and checks the certificate for: {service}.{namespace}, no ".svc". */}}
{{- define "dcw.serviceHost" -}}{{ include "dcw.fullname" . }}.{{ include "dcw.namespace" . }}{{- end -}}
{{- define "dcw.dnsNames" -}}
{{- $host := include "dcw.serviceHost" . -}}
{{- list $host (printf "%s.svc" $host) (printf "%s.svc.cluster.local" $host) | toJson -}}
{{- end -}}

{{/* Selector labels: app.kubernetes.io/name alone, as in deploy/ (a Deployment's selector is immutable). */}}
{{- define "dcw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dcw.name" . }}
{{- end -}}

{{/* Labels of every object: under Helm the recommended ones; for deploy/ the name alone (the kustomization adds the rest). */}}
{{- define "dcw.labels" -}}
{{ include "dcw.selectorLabels" . }}
{{- if not .Values.kustomize }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: doca-platform-framework
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
{{- end -}}

{{/* metadata.labels of objects that carry no labels in deploy/ (the kustomization adds them there). */}}
{{- define "dcw.helmLabels" -}}
{{- if not .Values.kustomize }}
  labels:
    {{- include "dcw.labels" . | nindent 4 }}
{{- end }}
{{- end -}}

{{/* The namespaces no request may make a ServiceAccount or mint a token in: kube-* and these. */}}
{{- define "dcw.protectedNamespaces" -}}
{{- list .Values.metacontroller.namespace (include "dcw.namespace" .) | uniq | join "," -}}
{{- end -}}

{{/* The same, as a CEL list's elements: 'metacontroller', 'dpu-credential-webhook'. */}}
{{- define "dcw.protectedNamespacesCel" -}}
{{- $quoted := list -}}
{{- range (include "dcw.protectedNamespaces" . | splitList ",") -}}{{- $quoted = append $quoted (printf "'%s'" .) -}}{{- end -}}
{{- join ", " $quoted -}}
{{- end -}}

{{/* The CompositeController's name, and the finalizer Metacontroller derives from it. */}}
{{- define "dcw.controllerName" -}}dpuservicecredentialrequest-controller{{- end -}}
{{- define "dcw.metacontrollerFinalizer" -}}metacontroller.io/compositecontroller-{{ include "dcw.controllerName" . }}{{- end -}}

{{/* The username Metacontroller's ServiceAccount authenticates as. */}}
{{- define "dcw.metacontrollerUser" -}}system:serviceaccount:{{ .Values.metacontroller.namespace }}:{{ .Values.metacontroller.serviceAccount }}{{- end -}}

{{/* The username the webhook's own ServiceAccount (rbac.yaml) authenticates as. */}}
{{- define "dcw.webhookUser" -}}system:serviceaccount:{{ include "dcw.namespace" . }}:{{ include "dcw.fullname" . }}{{- end -}}

{{/* The bootstrap Job (templates/bootstrap/): runs when the chart makes the hook token or the certificates. */}}
{{- define "dcw.bootstrap" -}}
{{- if or .Values.hookToken.generate (eq .Values.tls.source "generated") -}}true{{- end -}}
{{- end -}}
{{- define "dcw.bootstrapName" -}}{{ include "dcw.fullname" . | trunc 53 | trimSuffix "-" }}-bootstrap{{- end -}}

{{/* A Helm hook run before install and upgrade (Argo CD: PreSync); `weight` orders the RBAC before the Job. */}}
{{- define "dcw.bootstrapHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
