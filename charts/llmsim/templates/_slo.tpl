{{/*
SLO burn-rate rule groups (multi-window, multi-burn-rate, after the SRE workbook): for each enabled
SLO, the bad-event ratio over 5m..3d and two alerts, a page (14.4x over 1h and 5m, 6x over 6h and
30m) and a ticket (3x over 1d and 2h, 1x over 3d and 6h). With the default values this renders
exactly files/prometheus/llmsim-slo-rules.yaml (a chart test compares them).
*/}}
{{- define "llmsim.sloWindows" -}}5m 30m 1h 2h 6h 1d 3d{{- end }}

{{- define "llmsim.sloBurnAlerts" -}}
{{- $budget := printf "(1 - %v)" .objective }}
- alert: {{ .alert }}
  expr: |
    (
      {{ .record }}1h > (14.4 * {{ $budget }})
      and {{ .record }}5m > (14.4 * {{ $budget }})
    )
    or
    (
      {{ .record }}6h > (6 * {{ $budget }})
      and {{ .record }}30m > (6 * {{ $budget }})
    )
  for: 2m
  labels:
    severity: critical
    slo: {{ .slo }}
  annotations:
    summary: {{ .summary }} burn the error budget fast in {{ "{{ $labels.namespace }}" }}
    description: >-
      {{ .description }} At this rate the 30-day error budget of the {{ .objective }} objective lasts
      less than five days.
- alert: {{ .alert }}
  expr: |
    (
      {{ .record }}1d > (3 * {{ $budget }})
      and {{ .record }}2h > (3 * {{ $budget }})
    )
    or
    (
      {{ .record }}3d > (1 * {{ $budget }})
      and {{ .record }}6h > (1 * {{ $budget }})
    )
  for: 15m
  labels:
    severity: warning
    slo: {{ .slo }}
  annotations:
    summary: {{ .summary }} burn the error budget in {{ "{{ $labels.namespace }}" }}
    description: >-
      {{ .description }} At this rate the 30-day error budget of the {{ .objective }} objective lasts
      thirty days or less.
{{- end }}

{{- define "llmsim.sloRuleGroups" -}}
{{- $slo := .Values.prometheusRule.slo }}
{{- $sel := $slo.selector | default "" }}
{{- if $slo.ttft.enabled }}
{{- $le := printf "%v" $slo.ttft.thresholdSeconds }}
{{- if not (contains "." $le) }}{{ $le = printf "%s.0" $le }}{{ end }}
{{- $good := join "," (compact (list $sel (printf "le=%q" $le))) }}
- name: llmsim.slo.ttft
  rules:
    {{- range $w := splitList " " (include "llmsim.sloWindows" .) }}
    - record: namespace:llmsim_slo_ttft_bad:ratio_rate{{ $w }}
      expr: |
        1 - (
          sum by (namespace) (rate(llmsim_ttft_seconds_bucket{ {{- $good -}} }[{{ $w }}]))
          / sum by (namespace) (rate(llmsim_ttft_seconds_count{ {{- $sel -}} }[{{ $w }}]))
        )
    {{- end }}
    {{- include "llmsim.sloBurnAlerts" (dict "alert" "LlmsimTTFTBudgetBurn" "record" "namespace:llmsim_slo_ttft_bad:ratio_rate" "objective" $slo.ttft.objective "slo" "ttft" "summary" (printf "Requests slower than %ss to the first token" $le) "description" (printf "More than the budgeted share of the requests through the sidecars wait longer than %ss for their first token." $le)) | nindent 4 }}
{{- end }}
{{- if $slo.errors.enabled }}
{{- $bad := join "," (compact (list $sel "outcome!~\"ok|cancelled\"")) }}
- name: llmsim.slo.errors
  rules:
    {{- range $w := splitList " " (include "llmsim.sloWindows" .) }}
    - record: namespace:llmsim_slo_errors_bad:ratio_rate{{ $w }}
      expr: |
        (
          sum by (namespace) (rate(llmsim_requests_total{ {{- $bad -}} }[{{ $w }}]))
          or 0 * sum by (namespace) (rate(llmsim_requests_total{ {{- $sel -}} }[{{ $w }}]))
        )
        / sum by (namespace) (rate(llmsim_requests_total{ {{- $sel -}} }[{{ $w }}]))
    {{- end }}
    {{- include "llmsim.sloBurnAlerts" (dict "alert" "LlmsimErrorBudgetBurn" "record" "namespace:llmsim_slo_errors_bad:ratio_rate" "objective" $slo.errors.objective "slo" "errors" "summary" "Failed requests" "description" "More than the budgeted share of the requests through the sidecars fail (injected faults included).") | nindent 4 }}
{{- end }}
{{- end }}
