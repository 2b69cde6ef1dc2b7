"""Offline validation fails on anything a cluster or Helm would reject or silently drop."""

from __future__ import annotations

import copy

import pytest

from mlops.offline.render import RenderedResource, render
from mlops.offline.validate import (
    plain_credentials,
    strict_crd_schema,
    unknown_value_paths,
    validate_chart,
    validate_manifest,
    validate_rendering,
)
from tests.conftest import PROJECT_DIR

OPTIONS = {"protect": False, "retainOnDelete": False, "deleteBeforeReplace": False, "dependsOn": [], "provider": None, "ignoreChanges": []}


def resource(type_token: str, inputs: dict, name: str = "example") -> RenderedResource:
    return RenderedResource(urn=f"urn:pulumi:t::p::{type_token}::{name}", type=type_token, name=name, parent=None,
                            custom=True, inputs=inputs, options=OPTIONS)


def manifest_findings(res: RenderedResource, reference) -> list:
    from mlops.offline.render import manifest_of

    return validate_manifest(res, manifest_of(res), reference, "1.33")


def test_dev_rendering_is_clean(dev_rendering, reference):
    assert validate_rendering(dev_rendering, reference, "1.33") == []


def test_typo_in_a_nested_core_field_fails(dev_rendering, reference):
    """`resourcez` deep inside a pod template is an unknown field under the strict schemas."""
    (deployment,) = [r for r in dev_rendering.by_type("kubernetes:apps/v1:Deployment") if r.name == "mlflow-server"]
    broken = copy.deepcopy(deployment.inputs)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["resourcez"] = container.pop("resources")
    findings = manifest_findings(resource(deployment.type, broken), reference)
    assert [(f.check, f.path) for f in findings] == [("kubernetes-schema", "spec.template.spec.containers[0]")]
    assert "'resourcez' was unexpected" in findings[0].message


def test_wrong_type_in_a_core_field_fails(reference):
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"port": "http"}]}}
    findings = manifest_findings(resource("kubernetes:core/v1:Service", service), reference)
    assert [(f.check, f.path) for f in findings] == [("kubernetes-schema", "spec.ports[0].port")]


INFERENCE_SERVICE = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "m", "namespace": "mlops-serving"},
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "canaryTrafficPercent": 10,
            "model": {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": "s3://b/m"},
        }
    },
}


def test_valid_inference_service_passes_the_kserve_crd(reference):
    res = resource("kubernetes:serving.kserve.io/v1beta1:InferenceService", INFERENCE_SERVICE)
    assert manifest_findings(res, reference) == []


def test_typo_in_a_nested_custom_resource_field_fails(reference):
    """The API server would prune `storageUrl` and serve nothing; validation names it."""
    broken = copy.deepcopy(INFERENCE_SERVICE)
    broken["spec"]["predictor"]["model"]["storageUrl"] = broken["spec"]["predictor"]["model"].pop("storageUri")
    findings = manifest_findings(resource("kubernetes:serving.kserve.io/v1beta1:InferenceService", broken), reference)
    assert [(f.check, f.path) for f in findings] == [("crd-schema", "spec.predictor.model")]
    assert "'storageUrl' was unexpected" in findings[0].message


def test_kind_without_any_schema_is_a_finding(reference):
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    (finding,) = manifest_findings(resource("kubernetes:example.com/v1:Widget", unknown), reference)
    assert finding.check == "schema-missing"


def test_strict_crd_schema_keeps_free_form_and_int_or_string_fields():
    schema = strict_crd_schema({
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
            "port": {"x-kubernetes-int-or-string": True},
            "fixed": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    })
    assert schema["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]
    assert schema["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert schema["properties"]["fixed"]["additionalProperties"] is False


def test_unknown_chart_value_paths_are_found_but_free_form_maps_are_not():
    defaults = {"controller": {"replicas": 1, "podAnnotations": {}, "env": []}, "image": {"tag": "x"}}
    values = {"controller": {"replcas": 2, "podAnnotations": {"anything": "goes"}, "env": [{"name": "A"}]},
              "image": {"tag": "y"}, "extra": True}
    assert unknown_value_paths(values, defaults) == ["controller.replcas", "extra"]


def test_chart_version_must_match_the_pinned_reference(reference):
    chart = resource("kubernetes:helm.sh/v4:Chart", {"chart": "prometheus-pushgateway", "version": "3.0.0", "values": {}})
    assert [f.check for f in validate_chart(chart, reference)] == ["chart-version"]


@pytest.mark.parametrize("values, path", [
    ({"serviceMonitor": {"enabled": True, "namespce": "x"}}, "serviceMonitor.namespce"),
    ({"resourcez": {}}, "resourcez"),
])
def test_chart_values_typo_fails(reference, values, path):
    chart = resource("kubernetes:helm.sh/v4:Chart", {"chart": "prometheus-pushgateway", "version": "3.8.0", "values": values})
    findings = validate_chart(chart, reference)
    assert [(f.check, f.path) for f in findings] == [("chart-values", path)]


def test_cert_manager_values_are_also_checked_against_its_json_schema(reference):
    chart = resource("kubernetes:helm.sh/v4:Chart", {"chart": "cert-manager", "version": "v1.21.0",
                                                     "values": {"crds": {"enabled": "yes"}}})
    checks = {f.check for f in validate_chart(chart, reference)}
    assert "chart-values-schema" in checks


def test_a_plain_text_credential_in_the_stack_file_is_refused():
    """`secure:` values read as the secret marker offline; a credential typed in plain text would be in git."""
    assert plain_credentials(render(PROJECT_DIR, "prod")) == []
    path = "mlops:alerting.receivers[1].slack.apiUrl"
    (finding,) = plain_credentials(render(PROJECT_DIR, "prod", {path: "https://hooks.slack.com/services/T0/B0/x"}))
    assert (finding.check, finding.path) == ("plain-credential", path)
    assert f"pulumi config set --secret --path '{path}'" in finding.message
