{{/*
The operator's settings (llmsim_operator.settings.OperatorSettings), one LLMSIM_OPERATOR_* variable
per field (LLMSIM_OPERATOR_PEERING_PRIORITY only when set: unset, each replica draws its own).
tests/chart/test_chart_operator_env.py checks that this list and the settings class agree.
*/}}
{{- define "llmsim.operatorEnv" -}}
- name: LLMSIM_OPERATOR_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: LLMSIM_OPERATOR_WATCH_NAMESPACES
  value: {{ join "," .Values.operator.watchNamespaces | quote }}
- name: LLMSIM_OPERATOR_INJECT_NAMESPACES
  value: {{ join "," (include "llmsim.injectNamespaces" . | fromJsonArray) | quote }}
- name: LLMSIM_OPERATOR_EXCLUDED_NAMESPACES
  value: {{ join "," .Values.injection.excludedNamespaces | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_IMAGE
  value: {{ include "llmsim.sidecarImage" . | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_IMAGE_PULL_POLICY
  value: {{ .Values.image.sidecar.pullPolicy | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_MODE
  value: {{ .Values.sidecar.mode | quote }}
- name: LLMSIM_OPERATOR_DEFAULT_CAPTURE
  value: {{ .Values.sidecar.defaultCapture | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_CPU_REQUEST
  value: {{ .Values.sidecar.resources.requests.cpu | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_MEMORY_REQUEST
  value: {{ .Values.sidecar.resources.requests.memory | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_CPU_LIMIT
  value: {{ .Values.sidecar.resources.limits.cpu | quote }}
- name: LLMSIM_OPERATOR_SIDECAR_MEMORY_LIMIT
  value: {{ .Values.sidecar.resources.limits.memory | quote }}
- name: LLMSIM_OPERATOR_EXTRA_NO_PROXY
  value: {{ join "," .Values.sidecar.extraNoProxy | quote }}
- name: LLMSIM_OPERATOR_LOADGEN_IMAGE
  value: {{ include "llmsim.loadgenImage" . | quote }}
- name: LLMSIM_OPERATOR_JOB_BACKOFF_LIMIT
  value: {{ .Values.operator.jobBackoffLimit | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_ADDR
  value: "0.0.0.0"
- name: LLMSIM_OPERATOR_WEBHOOK_PORT
  value: {{ .Values.webhook.port | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_INSECURE
  value: "false"
- name: LLMSIM_OPERATOR_WEBHOOK_SERVICE
  value: {{ include "llmsim.webhookService" . | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_URL
  value: {{ .Values.webhook.url | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION
  value: {{ include "llmsim.webhookConfiguration" . | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_TLS_SECRET
  value: {{ include "llmsim.webhookTlsSecret" . | quote }}
- name: LLMSIM_OPERATOR_WEBHOOK_CERT_DIR
  value: "/tmp/llmsim-webhook"
- name: LLMSIM_OPERATOR_WEBHOOK_CERT_DAYS
  value: {{ .Values.webhook.certificate.days | quote }}
- name: LLMSIM_OPERATOR_CA_SECRET
  value: {{ .Values.ca.secretName | quote }}
- name: LLMSIM_OPERATOR_CA_DAYS
  value: {{ .Values.ca.days | quote }}
- name: LLMSIM_OPERATOR_RENEW_BEFORE_DAYS
  value: {{ .Values.webhook.renewBeforeDays | quote }}
- name: LLMSIM_OPERATOR_ROTATION_CHECK_INTERVAL_S
  value: {{ .Values.webhook.rotationCheckIntervalS | quote }}
- name: LLMSIM_OPERATOR_PODS_RESYNC_INTERVAL_S
  value: {{ .Values.operator.podsResyncIntervalS | quote }}
- name: LLMSIM_OPERATOR_SCENARIO_POLL_INTERVAL_S
  value: {{ .Values.operator.scenarioPollIntervalS | quote }}
- name: LLMSIM_OPERATOR_PEERING
  value: {{ include "llmsim.peeringName" . | quote }}
- name: LLMSIM_OPERATOR_STANDALONE
  value: {{ (not .Values.operator.peering.enabled) | toString | quote }}
{{- if not (kindIs "invalid" .Values.operator.peering.priority) }}
- name: LLMSIM_OPERATOR_PEERING_PRIORITY
  value: {{ .Values.operator.peering.priority | int | toString | quote }}
{{- end }}
- name: LLMSIM_OPERATOR_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end }}

{{/* Readiness: the webhook server accepts connections (so the Service only routes to replicas that
can answer the API server). Liveness: the metrics server in the operator process answers (or the
webhook port when metrics are off). */}}
{{- define "llmsim.operatorProbes" -}}
readinessProbe:
  tcpSocket:
    port: webhook
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  {{- if .Values.metrics.port }}
  httpGet:
    path: /metrics
    port: metrics
  {{- else }}
  tcpSocket:
    port: webhook
  {{- end }}
  initialDelaySeconds: 15
  periodSeconds: 20
  failureThreshold: 3
{{- end }}
