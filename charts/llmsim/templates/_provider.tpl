{{/* Labels of the simulated provider's resources (values `provider.*`). */}}
{{- define "llmsim.providerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "llmsim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider
{{- end }}

{{- define "llmsim.providerLabels" -}}
helm.sh/chart: {{ include "llmsim.chart" . }}
{{ include "llmsim.providerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmsim
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "llmsim.providerName" -}}
{{- printf "%s-provider" (include "llmsim.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
