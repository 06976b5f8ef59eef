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
