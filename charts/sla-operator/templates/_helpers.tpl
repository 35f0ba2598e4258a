{{/* Chart name, cut to the 63 characters a label value allows. */}}
{{- define "sla-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name for the release's objects: the release name, with the chart name unless it already holds it. */}}
{{- define "sla-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "sla-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sla-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sla-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sla-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sla-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sla-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sla-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* What the operator does in a namespace it watches: the same rules for a ClusterRole
     (every namespace) and for the Role of each watched namespace. */}}
{{- define "sla-operator.namespaceRules" -}}
# The operator's own kinds: it writes statuses and opens and resolves Incidents.
- apiGroups: [sla.dev]
  resources:
  - servicelevelagreements
  - servicelevelagreements/status
  - maintenancewindows
  - maintenancewindows/status
  - incidents
  - incidents/status
  verbs: [get, list, watch, create, update, patch, delete]
# Events explaining what the operator did, through both the core and the events.k8s.io API.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Probe headers may read their values from Secrets in the agreement's namespace.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# One PrometheusRule per agreement, where prometheus-operator's CRD is installed.
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [get, list, watch, create, patch, delete]
{{- end }}

{{/* Cluster-scoped reads in either mode: kopf notices CRDs appearing (the PrometheusRule CRD
     among them); in cluster mode it also lists namespaces. */}}
{{- define "sla-operator.clusterReads" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end }}
