{{/* Names: "<release>-llmsim" unless the release name already contains the chart name. */}}
{{- define "llmsim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmsim.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "llmsim.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "llmsim.labels" -}}
helm.sh/chart: {{ include "llmsim.chart" . }}
{{ include "llmsim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmsim
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels selecting the operator pods. */}}
{{- define "llmsim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmsim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "llmsim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llmsim.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Names the operator is told about (LLMSIM_OPERATOR_WEBHOOK_*), so they cannot drift. */}}
{{- define "llmsim.webhookService" -}}
{{- printf "%s-webhook" (include "llmsim.fullname" .) }}
{{- end }}

{{- define "llmsim.webhookConfiguration" -}}
{{- printf "%s-sidecar-injector" (include "llmsim.fullname" .) }}
{{- end }}

{{- define "llmsim.webhookTlsSecret" -}}
{{- printf "%s-webhook-tls" (include "llmsim.fullname" .) }}
{{- end }}

{{- define "llmsim.metricsService" -}}
{{- printf "%s-metrics" (include "llmsim.fullname" .) }}
{{- end }}

{{- define "llmsim.peeringName" -}}
{{- default (include "llmsim.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{/* "repository:tag" or "repository@digest"; the tag defaults to the appVersion. */}}
{{- define "llmsim.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "llmsim.operatorImage" -}}
{{- include "llmsim.image" (list .Values.image.operator .) }}
{{- end }}

{{- define "llmsim.sidecarImage" -}}
{{- include "llmsim.image" (list .Values.image.sidecar .) }}
{{- end }}

{{- define "llmsim.loadgenImage" -}}
{{- if .Values.loadgen.image.repository }}
{{- include "llmsim.image" (list .Values.loadgen.image .) }}
{{- else }}
{{- include "llmsim.sidecarImage" . }}
{{- end }}
{{- end }}

{{/* Namespaces the webhooks never see: the configured exclusions plus the release namespace. */}}
{{- define "llmsim.excludedNamespaces" -}}
{{- $excluded := concat (list .Release.Namespace) .Values.injection.excludedNamespaces | uniq }}
{{- toJson $excluded }}
{{- end }}

{{/* The namespaceSelector expressions both webhooks share. */}}
{{- define "llmsim.namespaceScope" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ include "llmsim.excludedNamespaces" . }}
{{- with include "llmsim.injectNamespaces" . | fromJsonArray }}
- key: kubernetes.io/metadata.name
  operator: In
  values: {{ toJson . }}
{{- end }}
{{- end }}

{{/* What both webhooks share: (list $ path). */}}
{{- define "llmsim.webhookCommon" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 }}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ $root.Values.webhook.failurePolicy }}
reinvocationPolicy: {{ $root.Values.webhook.reinvocationPolicy }}
timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
clientConfig:
  {{- with $root.Values.webhook.url }}
  url: {{ printf "%s%s" (trimSuffix "/" .) $path | quote }}
  {{- else }}
  service:
    name: {{ include "llmsim.webhookService" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ $path }}
    port: 443
  {{- end }}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    operations: ["CREATE"]
    scope: Namespaced
objectSelector:
  matchExpressions:
    - key: llmsim.io/inject
      operator: NotIn
      values: ["false", "disabled"]
{{- end }}
