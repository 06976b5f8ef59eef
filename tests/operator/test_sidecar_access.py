"""The sidecars' Role, RoleBinding and admin-token Secret (pure builders)."""

from __future__ import annotations

import base64

import kubernetes_validate

from llmsim_operator import constants as c
from llmsim_operator.resources import sidecar_access


def test_the_role_reads_profiles_and_posts_events_and_nothing_else() -> None:
    role = sidecar_access.role("team")
    kubernetes_validate.validate(role, "1.37.0", strict=True)
    verbs = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert verbs == {
        (("llmsim.io",), ("simulationprofiles",)): {"get", "list", "watch"},
        (("",), ("events",)): {"create"},
    }


def test_the_binding_names_each_service_account_once_and_keeps_existing_ones() -> None:
    binding = sidecar_access.role_binding("team", ["web", "default", "web"])
    kubernetes_validate.validate(binding, "1.37.0", strict=True)
    assert [s["name"] for s in binding["subjects"]] == ["default", "web"]
    assert binding["roleRef"]["name"] == c.SIDECAR_ACCESS_NAME
    foreign = {
        **binding,
        "subjects": [*binding["subjects"], {"kind": "ServiceAccount", "name": "x", "namespace": "other"}],
    }
    assert sidecar_access.bound_service_accounts(foreign, "team") == {"default", "web"}
    assert sidecar_access.bound_service_accounts(None, "team") == set()


def test_the_admin_secret_holds_a_random_token() -> None:
    first, second = sidecar_access.admin_secret("team"), sidecar_access.admin_secret("team")
    kubernetes_validate.validate(first, "1.37.0", strict=True)
    token = base64.b64decode(first["data"][c.ADMIN_TOKEN_KEY])
    assert len(token) >= 40 and token != base64.b64decode(second["data"][c.ADMIN_TOKEN_KEY])


def test_a_paused_namespace_names_who_paused_it_and_marks_its_profiles() -> None:
    from llmsim_operator.resources import kill_switch

    namespace = {
        "metadata": {
            "name": "team",
            "annotations": {"llmsim.io/paused": "True"},
            "managedFields": [
                {"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}},
                {
                    "manager": "kubectl-annotate",
                    "fieldsV1": {"f:metadata": {"f:annotations": {"f:llmsim.io/paused": {}}}},
                },
            ],
        }
    }
    assert kill_switch.paused(namespace)
    assert kill_switch.reason(namespace) == "namespace team llmsim.io/paused=true (set by kubectl-annotate)"
    assert (
        kill_switch.reason({"metadata": {"name": "team", "annotations": {"llmsim.io/paused": "false"}}})
        is None
    )
    assert kill_switch.killed_by({"metadata": {"annotations": {"llmsim.io/kill-switch": "x"}}}) == "x"
    assert kill_switch.killed_by({"metadata": {}}) is None
