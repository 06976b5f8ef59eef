{{/* What reconciling SimulationProfiles and LoadScenarios needs, wherever they live. */}}
{{- define "llmsim.reconcileRules" -}}
- apiGroups: ["llmsim.io"]
  resources: ["simulationprofiles", "loadscenarios"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["llmsim.io"]
  resources: ["simulationprofiles/status", "loadscenarios/status"]
  verbs: ["get", "patch", "update"]
# Rendered profiles, scenario specs and run reports.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# LoadScenario runs, and the workers' logs that carry their partial results.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# The sidecars' own access, in each namespace with profiles: a Role (read the profiles, post
# Events) and its RoleBinding to the injected pods' ServiceAccounts, both named llmsim-sidecar.
# (Granting them needs the operator to hold those permissions itself, which it does above.)
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  resourceNames: ["llmsim-sidecar"]
  verbs: ["get", "patch", "update"]
{{- end }}

{{/* "namespaced" or "cluster": `rbac.scope`, else namespaced exactly when `watchNamespaces` is set. */}}
{{- define "llmsim.rbacScope" -}}
{{- $scope := .Values.rbac.scope | default "" -}}
{{- if eq $scope "" -}}
{{- ternary "namespaced" "cluster" (gt (len .Values.operator.watchNamespaces) 0) -}}
{{- else if and (eq $scope "namespaced") (not .Values.operator.watchNamespaces) -}}
{{- fail "rbac.scope: namespaced needs operator.watchNamespaces (the namespaces to grant Roles in)" -}}
{{- else -}}
{{- $scope -}}
{{- end -}}
{{- end }}

{{/* The namespaces the webhook may inject into (JSON list; empty: every namespace not excluded).
With namespaced RBAC and no `injection.namespaces`, the watched namespaces not excluded: the
operator holds Roles there only, so it could not create the CA Secret anywhere else. */}}
{{- define "llmsim.injectNamespaces" -}}
{{- if .Values.injection.namespaces -}}
{{- toJson .Values.injection.namespaces -}}
{{- else if eq (include "llmsim.rbacScope" .) "namespaced" -}}
{{- $out := list -}}
{{- range .Values.operator.watchNamespaces -}}
{{- if not (has . $.Values.injection.excludedNamespaces) -}}{{- $out = append $out . -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- else -}}
[]
{{- end -}}
{{- end }}

{{/* Namespaced RBAC: every namespace the operator gets a Role in (JSON list). */}}
{{- define "llmsim.rbacNamespaces" -}}
{{- concat .Values.operator.watchNamespaces (include "llmsim.injectNamespaces" . | fromJsonArray) | uniq | toJson -}}
{{- end }}

{{/* Injected pods: counted per profile and flagged when they miss the sidecar. */}}
{{- define "llmsim.podRules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Injecting pods in a namespace: the sidecars' CA Secret there, created once, then read and
rotated by name only (no other Secret is readable). */}}
{{- define "llmsim.caSecretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ .Values.ca.secretName | quote }}]
  verbs: ["get", "patch", "update"]
{{- end }}
