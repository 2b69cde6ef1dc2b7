"""`mlops validate` refuses what the CRDs' CEL rules (`x-kubernetes-validations`) refuse, worded as
the API server words it, and passes what they accept.

The rules are the reference CRDs' own (reference/crds, at the tags reference/manifest.yaml records);
each case names the CRD, the field the rule sits on and, in the comment, the Go marker it is
generated from at that tag.
"""

from __future__ import annotations

import copy
import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from mlops.offline.cel_rules import RULES, TRANSITION_VARIABLE, RuleCheck, cel_context, escaped, rule_tree
from mlops.offline.validate import validate_manifest
from tests.conftest import REFERENCE_DIR
from tests.spine.test_validate import resource
from tests.spine.test_validate_gateway_crds import (
    BACKEND_TRAFFIC_POLICY,
    CLIENT_TRAFFIC_POLICY,
    CLUSTER_ISSUER,
    ENVOY_PROXY,
    GATEWAY,
    GATEWAY_CLASS,
    HTTP_ROUTE,
    ISSUER,
    SECURITY_POLICY_API_KEY,
    SECURITY_POLICY_JWT,
    _parent,
)


def rule_findings(manifest: dict[str, Any], reference) -> list[tuple[str, str, str]]:
    return [(f.check, f.path, f.message) for f in validate_manifest(resource("kubernetes:test:Object", manifest), manifest, reference, "1.33")]


def changed(valid: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`valid` with each dotted path (`__` for `.`, list items as numbers) set; None deletes it."""
    document = copy.deepcopy(valid)
    for dotted, value in changes.items():
        container, key = _parent(document, dotted.replace("__", "."))
        if value is None:
            del container[key]
        else:
            container[key] = value
    return document


VENAFI = {"zone": "ml\\default", "tpp": {"url": "https://tpp.example.com/vedsdk", "credentialsRef": {"name": "tpp-login"}}}

# (object, path of the rule's node, the API server's message); each breaks exactly one rule.
BROKEN: list[tuple[str, dict[str, Any], str, str]] = [
    # apis/v1/gateway_types.go (v1.6.1), Listeners: "Listener name must be unique within the Gateway".
    ("gateway-duplicate-listener-name", changed(GATEWAY, spec__listeners__1__name="https"),
     "spec.listeners", 'Invalid value: "array": Listener name must be unique within the Gateway'),
    # apis/v1/gateway_types.go: "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']".
    ("gateway-tls-on-http", changed(GATEWAY, spec__listeners__1__tls={"mode": "Terminate", "certificateRefs": [{"name": "c"}]}),
     "spec.listeners", "Invalid value: \"array\": tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"),
    # apis/v1/gateway_types.go: "tls mode must be Terminate for protocol HTTPS".
    ("gateway-https-passthrough", changed(GATEWAY, spec__listeners__0__tls__mode="Passthrough"),
     "spec.listeners", 'Invalid value: "array": tls mode must be Terminate for protocol HTTPS'),
    # apis/v1/shared_types.go (HTTPPathMatch): absolute path for Exact and PathPrefix. The match
    # leaves `type` out: the CRD defaults it to PathPrefix, and the rule reads the default.
    ("httproute-relative-path-defaulted-type", changed(HTTP_ROUTE, spec__rules__0__matches__0__path={"value": "predict"}),
     "spec.rules[0].matches[0].path",
     "Invalid value: \"object\": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    # apis/v1/httproute_types.go (HTTPRouteFilter): "filter.urlRewrite must be nil if the filter.type is not URLRewrite".
    ("httproute-filter-type-mismatch", changed(HTTP_ROUTE, spec__rules__0__filters__0__type="RequestHeaderModifier",
                                               spec__rules__0__filters__0__requestHeaderModifier={"set": [{"name": "x", "value": "y"}]}),
     "spec.rules[0].filters[0]", 'Invalid value: "object": filter.urlRewrite must be nil if the filter.type is not URLRewrite'),
    # apis/v1/shared_types.go (CommonRouteSpec.ParentRefs): references to one parent need distinct
    # sectionNames. The rules read `group` and `kind`, which the CRD defaults, and `__namespace__`:
    # `namespace` is a CEL keyword, escaped.
    ("httproute-same-parent-twice", changed(HTTP_ROUTE, spec__parentRefs=[{"name": "mlops", "namespace": "envoy-gateway-system"}] * 2),
     "spec.parentRefs",
     'Invalid value: "array": sectionName must be unique when parentRefs includes 2 or more references to the same parent'),
    ("httproute-same-parent-one-section", changed(HTTP_ROUTE, spec__parentRefs=[{"name": "mlops", "namespace": "n", "sectionName": "https"},
                                                                                {"name": "mlops", "namespace": "n"}]),
     "spec.parentRefs",
     'Invalid value: "array": sectionName must be specified when parentRefs includes 2 or more references to the same parent'),
    # api/v1alpha1/envoyproxy_types.go (KubernetesServiceSpec): loadBalancerIP only for LoadBalancer.
    ("envoyproxy-load-balancer-ip-on-cluster-ip", changed(ENVOY_PROXY, spec__provider__kubernetes__envoyService__type="ClusterIP"),
     "spec.provider.kubernetes.envoyService", 'Invalid value: "object": loadBalancerIP can only be set for LoadBalancer type'),
    # api/v1alpha1/envoyproxy_types.go: "loadBalancerIP must be a valid IPv4 address".
    ("envoyproxy-load-balancer-ip-not-ipv4", changed(ENVOY_PROXY, spec__provider__kubernetes__envoyService__loadBalancerIP="203.0.113.300"),
     "spec.provider.kubernetes.envoyService.loadBalancerIP", 'Invalid value: "string": loadBalancerIP must be a valid IPv4 address'),
    # api/v1alpha1/envoyproxy_types.go (KubernetesHorizontalPodAutoscalerSpec): integers as Pulumi's
    # mocks hand them back (floats) compare as the API server's ints.
    ("envoyproxy-hpa-min-above-max", changed(ENVOY_PROXY, spec__provider__kubernetes__envoyDeployment=None,
                                              spec__provider__kubernetes__envoyHpa={"minReplicas": 4.0, "maxReplicas": 2.0}),
     "spec.provider.kubernetes.envoyHpa", 'Invalid value: "object": maxReplicas cannot be less than minReplicas'),
    # api/v1alpha1/jwt_types.go (JWTProvider): "remoteJWKS and localJWKS cannot both be specified."
    ("securitypolicy-two-jwks", changed(SECURITY_POLICY_JWT, spec__jwt__providers__0__localJWKS={"type": "Inline", "inline": "{}"}),
     "spec.jwt.providers[0]", 'Invalid value: "object": remoteJWKS and localJWKS cannot both be specified.'),
    # api/v1alpha1/jwt_types.go (JWTProvider): "either remoteJWKS or localJWKS must be specified."
    ("securitypolicy-no-jwks", changed(SECURITY_POLICY_JWT, spec__jwt__providers__0__remoteJWKS=None),
     "spec.jwt.providers[0]", 'Invalid value: "object": either remoteJWKS or localJWKS must be specified.'),
    # api/v1alpha1/authorization_types.go (AuthorizationRule): "at least one of principal or cel must be specified".
    ("securitypolicy-rule-without-principal", changed(SECURITY_POLICY_JWT, spec__authorization__rules__0__principal=None),
     "spec.authorization.rules[0]", 'Invalid value: "object": at least one of principal or cel must be specified'),
    # api/v1alpha1/api_key_auth_types.go (ExtractFrom): "exactly one of headers, params, or cookies must be specified".
    ("securitypolicy-api-key-two-sources", changed(SECURITY_POLICY_API_KEY, spec__apiKeyAuth__extractFrom__0__params=["key"]),
     "spec.apiKeyAuth.extractFrom[0]", 'Invalid value: "object": exactly one of headers, params, or cookies must be specified'),
    # api/v1alpha1/securitypolicy_types.go: targetRefs of group gateway.networking.k8s.io only.
    ("securitypolicy-targets-a-service", changed(SECURITY_POLICY_JWT, spec__targetRefs__0__group="core"),
     "spec", 'Invalid value: "object": this policy can only have a targetRefs[*].group of gateway.networking.k8s.io'),
    # api/v1alpha1/ratelimit_types.go (LocalRateLimit): "response cost is not supported for Local Rate Limits".
    ("backendtrafficpolicy-local-response-cost", changed(BACKEND_TRAFFIC_POLICY, spec__rateLimit__local__rules__0__cost={"response": {"from": "Number", "number": 1}}),
     "spec.rateLimit.local.rules", 'Invalid value: "array": response cost is not supported for Local Rate Limits'),
    # api/v1alpha1/ratelimit_types.go (RateLimitSelectCondition): an empty client selector.
    ("backendtrafficpolicy-empty-selector", changed(BACKEND_TRAFFIC_POLICY, spec__rateLimit__local__rules__0__clientSelectors=[{}]),
     "spec.rateLimit.local.rules[0].clientSelectors[0]",
     'Invalid value: "object": at least one of headers, methods, path, sourceCIDR or queryParams must be specified'),
    # api/v1alpha1/tls_types.go (ClientTLSSettings): "minVersion must be smaller or equal to maxVersion".
    ("clienttrafficpolicy-min-above-max", changed(CLIENT_TRAFFIC_POLICY, spec__tls={"minVersion": "1.3", "maxVersion": "1.2"}),
     "spec.tls", 'Invalid value: "object": minVersion must be smaller or equal to maxVersion'),
    # api/v1alpha1/tls_types.go: "setting ciphers has no effect if the minimum possible TLS version is 1.3".
    ("clienttrafficpolicy-ciphers-with-tls13", changed(CLIENT_TRAFFIC_POLICY, spec__tls={"minVersion": "1.3", "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256"]}),
     "spec.tls", 'Invalid value: "object": setting ciphers has no effect if the minimum possible TLS version is 1.3'),
    # pkg/apis/certmanager/v1/types_issuer.go (VenafiIssuer, v1.21.0): exactly one of tpp, cloud or ngts.
    ("clusterissuer-venafi-two-backends", changed(CLUSTER_ISSUER, spec__acme=None,
                                                  spec__venafi={**VENAFI, "cloud": {"apiTokenSecretRef": {"name": "t", "key": "k"}}}),
     "spec.venafi", 'Invalid value: "object": exactly one of tpp, cloud, or ngts must be configured'),
    ("issuer-venafi-no-backend", changed(ISSUER, spec__acme=None, spec__venafi={"zone": "ml\\default"}),
     "spec.venafi", 'Invalid value: "object": exactly one of tpp, cloud, or ngts must be configured'),
]


@pytest.mark.parametrize(("case", "manifest", "path", "message"), BROKEN, ids=[case[0] for case in BROKEN])
def test_an_object_breaking_a_crd_rule_is_refused_as_the_api_server_words_it(case, manifest, path, message, reference):
    assert rule_findings(manifest, reference) == [("crd-rule", path, message)]


KEPT: list[tuple[str, dict[str, Any]]] = [
    # The same parent twice, in two namespaces: two parents, which `__namespace__` tells apart.
    ("httproute-same-name-two-namespaces", changed(HTTP_ROUTE, spec__parentRefs=[{"name": "mlops", "namespace": "a"}, {"name": "mlops", "namespace": "b"}])),
    ("httproute-same-parent-two-sections", changed(HTTP_ROUTE, spec__parentRefs=[{"name": "mlops", "sectionName": "https"}, {"name": "mlops", "sectionName": "http"}])),
    # envoyService.type defaults to LoadBalancer, so loadBalancerIP without a type is allowed.
    ("envoyproxy-load-balancer-ip-defaulted-type", changed(ENVOY_PROXY, spec__provider__kubernetes__envoyService__type=None)),
    ("envoyproxy-hpa-min-below-max", changed(ENVOY_PROXY, spec__provider__kubernetes__envoyDeployment=None,
                                              spec__provider__kubernetes__envoyHpa={"minReplicas": 2.0, "maxReplicas": 4.0})),
    ("securitypolicy-local-jwks-only", changed(SECURITY_POLICY_JWT, spec__jwt__providers__0__remoteJWKS=None,
                                                spec__jwt__providers__0__localJWKS={"type": "ValueRef", "valueRef": {"group": "", "kind": "ConfigMap", "name": "jwks"}})),
    ("clienttrafficpolicy-min-below-max", changed(CLIENT_TRAFFIC_POLICY, spec__tls={"minVersion": "1.2", "maxVersion": "1.3"})),
    ("clusterissuer-venafi-one-backend", changed(CLUSTER_ISSUER, spec__acme=None, spec__venafi=VENAFI)),
]


@pytest.mark.parametrize(("case", "manifest"), KEPT, ids=[case[0] for case in KEPT])
def test_an_object_keeping_the_rules_passes(case, manifest, reference):
    assert rule_findings(manifest, reference) == []


def test_a_rule_that_fails_to_evaluate_is_a_finding_naming_the_error_and_the_rule(reference):
    """A Terminate listener with an empty certificateRefs and no `options`: the rule reads
    `size(self.options)`, a field the object does not have, as the API server would."""
    gateway = changed(GATEWAY, spec__listeners__0__tls={"mode": "Terminate", "certificateRefs": []})
    assert rule_findings(gateway, reference) == [
        (
            "crd-rule",
            "spec.listeners[0].tls",
            "no such key: options evaluating rule: "
            "self.mode == 'Terminate' ? size(self.certificateRefs) > 0 || size(self.options) > 0 : true",
        )
    ]


def test_rules_are_not_evaluated_on_an_object_that_breaks_the_schema(reference):
    """The structure the rules read is broken; the schema finding is the one that says why."""
    findings = rule_findings(changed(SECURITY_POLICY_JWT, spec__jwt__providers__0__remoteJWKS__uri=None), reference)
    assert [(check, path) for check, path, _ in findings] == [("crd-schema", "spec.jwt.providers[0].remoteJWKS")]


def reference_rules() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(apiVersion kind, path, rule) for every rule in reference/crds."""

    def walk(schema: dict[str, Any], path: str, where: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for rule in schema.get(RULES) or []:
            yield where, path, rule
        for key, child in (schema.get("properties") or {}).items():
            yield from walk(child, f"{path}.{key}", where)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                yield from walk(schema[key], f"{path}[]", where)

    for path in sorted(glob.glob(str(REFERENCE_DIR / "crds" / "*.yaml"))):
        crd = yaml.load(Path(path).read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for version in crd["spec"]["versions"]:
            where = f"{crd['spec']['group']}/{version['name']} {crd['spec']['names']['kind']}"
            yield from walk(version["schema"]["openAPIV3Schema"], "", where)


@pytest.fixture(scope="module")
def all_rules() -> list[tuple[str, str, dict[str, Any]]]:
    return list(reference_rules())


# Named functions the reference CRDs' rules call (macros such as has/all/exists are not functions).
# CEL's standard library has size, matches, contains, startsWith, endsWith, duration; cel-go's
# strings extension has lowerAscii, upperAscii, split. A new one fails here until it is checked.
FUNCTIONS_CALLED = {"size", "matches", "contains", "startsWith", "endsWith", "duration", "lowerAscii", "upperAscii", "split"}


def test_every_rule_compiles_and_calls_only_functions_the_environment_has(all_rules):
    called: set[str] = set()
    for _where, _path, rule in all_rules:
        called |= {name for name in cel.compile(rule["rule"]).functions() if name[0] not in "_@!"}
    assert called == FUNCTIONS_CALLED


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("self.size() == 4 && size(self) == 4", True),
        ("self.matches('^a/B') && !self.matches('^b')", True),
        ("self.contains('/B') && self.startsWith('a/') && self.endsWith('c')", True),
        ("duration('1h30m') > duration('90s')", True),
        ("'A/b-C'.lowerAscii() == 'a/b-c' && 'a/b'.upperAscii() == 'A/B'", True),
        ("'example.com/team'.split('/') == ['example.com', 'team'] && 'a/b/c'.split('/', 2) == ['a', 'b/c']", True),
    ],
)
def test_each_function_the_rules_call_evaluates_as_kubernetes_does(expression, expected):
    """cel-go's semantics (ext/strings.go: split with a limit keeps the rest in the last piece)."""
    assert cel.compile(expression).execute(cel_context("a/Bc" if "self" in expression else None)) is expected


def test_rules_use_only_the_keys_the_findings_word(all_rules):
    """`fieldPath` and `reason` would move or reword a finding; none of the reference rules has them."""
    keys = {key for _where, _path, rule in all_rules for key in rule}
    assert keys <= {"rule", "message", "messageExpression"}


def test_transition_rules_are_the_ones_skipped_and_their_objects_pass(all_rules, reference):
    """A rule reading `oldSelf` compares an update with the stored object; offline there is none,
    so it is skipped. These are the reference CRDs' transition rules."""
    transition = sorted((where, path, rule["rule"]) for where, path, rule in all_rules if TRANSITION_VARIABLE in cel.compile(rule["rule"]).variables())
    assert transition == [
        ("gateway.networking.k8s.io/v1 GatewayClass", ".spec.controllerName", "self == oldSelf"),
        ("gateway.networking.k8s.io/v1beta1 GatewayClass", ".spec.controllerName", "self == oldSelf"),
    ]
    assert rule_findings(GATEWAY_CLASS, reference) == []


def test_message_expression_words_the_finding_and_message_is_the_fallback():
    """Kubernetes prefers a non-empty messageExpression's value, else message, else 'failed rule: <rule>'."""
    schema = {
        "type": "object",
        "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}},
        RULES: [
            {"rule": "self.replicas < 3", "messageExpression": "'replicas ' + string(self.replicas) + ' > 2'", "message": "too many"},
            {"rule": "self.name != 'x'", "messageExpression": "''", "message": "name x is taken"},
            {"rule": "self.replicas != 5"},
        ],
    }
    check = RuleCheck(rule_tree(schema))
    assert check.errors({"replicas": 5.0, "name": "x"}) == [
        ("", 'Invalid value: "object": replicas 5 > 2'),
        ("", 'Invalid value: "object": name x is taken'),
        ("", 'Invalid value: "object": failed rule: self.replicas != 5'),
    ]


@pytest.mark.parametrize(
    ("name", "escaped_name"),
    # k8s.io/apiserver pkg/cel/escaping_test.go cases.
    [("namespace", "__namespace__"), ("in", "__in__"), ("a__b", "a__underscores__b"), ("a.b", "a__dot__b"),
     ("a-b", "a__dash__b"), ("a/b", "a__slash__b"), ("a_b", "a_b"), ("1a", None), ("a@b", None), ("", None)],
)
def test_property_names_are_escaped_as_kubernetes_escapes_them(name, escaped_name):
    assert escaped(name) == escaped_name


def test_rules_of_every_crd_version_are_found(all_rules, reference):
    """The walk that finds rules for validation finds as many as the CRDs hold (677 at these tags)."""
    per_version: dict[str, int] = {}
    for where, _path, _rule in all_rules:
        per_version[where] = per_version.get(where, 0) + 1
    for where, count in per_version.items():
        assert _count_rules(reference.crd_rule_check(*where.split(" ")).tree) == count, where
    assert len(all_rules) == 677


def _count_rules(node: dict[str, Any]) -> int:
    children: list[dict[str, Any]] = list((node.get("properties") or {}).values())
    children += [node[key] for key in ("items", "additionalProperties") if key in node]
    return len(node.get("rules", ())) + sum(_count_rules(child) for child in children)

