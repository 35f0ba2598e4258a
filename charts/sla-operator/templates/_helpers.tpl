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
     (every namespace) and for the Role of each watched namespace. Exactly the calls it makes:
     it reads its kinds, writes their status, opens Incidents and appends to them, and never
     creates, edits or deletes an agreement or a window, nor deletes an Incident. Secrets are
     granted apart, only where rbac.secretNamespaces says (secrets-rbac.yaml). */}}
{{- define "sla-operator.namespaceRules" -}}
# The operator's own kinds: watched, and an agreement read again before an incident names it
# as its owner.
- apiGroups: [sla.dev]
  resources: [servicelevelagreements, maintenancewindows, incidents, supportrequests]
  verbs: [get, list, watch]
# NotificationRoutes: listed now and then (the Secrets they name are read under the same
# grant as probe credentials: rbac.secretNamespaces, and only when labelled).
- apiGroups: [sla.dev]
  resources: [notificationroutes]
  verbs: [get, list, watch]
# Their status (merge patches).
- apiGroups: [sla.dev]
  resources: [servicelevelagreements/status, maintenancewindows/status, incidents/status,
              notificationroutes/status, supportrequests/status]
  verbs: [patch]
# Incidents it opens, and the updates it appends to them (a JSON patch).
- apiGroups: [sla.dev]
  resources: [incidents]
  verbs: [create, patch]
# Events explaining what the operator did (core v1, created once each).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# One PrometheusRule per agreement, where prometheus-operator's CRD is installed: listed once,
# then read, created, changed or deleted one at a time.
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [get, list, create, patch, delete]
{{- if .Values.location.name }}
# Other locations' reports (run --location), watched.
- apiGroups: [sla.dev]
  resources: [locationreports]
  verbs: [get, list, watch]
{{- end }}
{{- if .Values.discovery.enabled }}
# Discovery (--discover): Services and Ingresses annotated sla.dev/agreement, watched only.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch]
{{- end }}
{{- end }}

{{/* Cluster-scoped reads in either mode: kopf notices CRDs appearing (the PrometheusRule CRD
     among them). Namespaces are never listed: the operator watches either every namespace at
     once or the ones named in watchNamespaces. */}}
{{- define "sla-operator.clusterReads" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}

{{/* The namespaces whose Secrets the operator may read (get): rbac.secretNamespaces, or the
     watched namespaces when it is empty; ["*"] stands for every namespace. */}}
{{- define "sla-operator.secretNamespaces" -}}
{{- toJson (default .Values.watchNamespaces .Values.rbac.secretNamespaces) }}
{{- end }}

{{/* mode probe (sla-operator probe): exactly the calls it makes in each namespace it probes:
     it watches the agreements, and lists, creates and merge-patches its own LocationReports.
     It never writes a status, an Incident or an Event. */}}
{{- define "sla-operator.locationRules" -}}
- apiGroups: [sla.dev]
  resources: [servicelevelagreements]
  verbs: [get, list, watch]
- apiGroups: [sla.dev]
  resources: [locationreports]
  verbs: [get, list, create, patch]
{{- end }}
