"""The custom resources of external endpoints (Gateway API, Envoy Gateway, cert-manager, AWS Load
Balancer Controller) are checked against their upstream CRDs in reference/crds: the objects the
platform renders pass, and a typo, a value outside an enum or a missing required field is refused.

Each invalid object breaks a rule of the upstream Go type the CRD is generated from (cited per case):
Gateway API v1.6.1 (kubernetes-sigs/gateway-api apis/v1, apis/v1beta1), Envoy Gateway v1.9.0
(envoyproxy/gateway api/v1alpha1), cert-manager v1.21.0 (cert-manager/cert-manager
pkg/apis/certmanager/v1, pkg/apis/acme/v1), AWS Load Balancer Controller v3.5.0
(kubernetes-sigs/aws-load-balancer-controller apis/elbv2/v1beta1).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mlops.offline.validate import validate_manifest
from tests.spine.test_validate import resource

GATEWAY_CLASS = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "mlops"},
    "spec": {
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": "mlops", "namespace": "envoy-gateway-system"},
    },
}

GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "mlops", "namespace": "envoy-gateway-system"},
    "spec": {
        "gatewayClassName": "mlops",
        "listeners": [
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "hostname": "*.ml.example.com",
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "mlops-gateway-tls"}]},
                "allowedRoutes": {"namespaces": {"from": "All"}},
            },
            {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}},
        ],
    },
}

HTTP_ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "fraud-detector", "namespace": "mlops-serving"},
    "spec": {
        "parentRefs": [{"name": "mlops", "namespace": "envoy-gateway-system", "sectionName": "https"}],
        "hostnames": ["fraud-detector.ml.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {"hostname": "fraud-detector-predictor.mlops-serving.svc.cluster.local"},
                    }
                ],
                "backendRefs": [{"name": "kourier-internal", "namespace": "kourier-system", "port": 80}],
            }
        ],
    },
}

REFERENCE_GRANT = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {"name": "models-to-kourier", "namespace": "kourier-system"},
    "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "mlops-serving"}],
        "to": [{"group": "", "kind": "Service", "name": "kourier-internal"}],
    },
}

ENVOY_PROXY = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "EnvoyProxy",
    "metadata": {"name": "mlops", "namespace": "envoy-gateway-system"},
    "spec": {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "envoyService": {
                    "name": "mlops-gateway",
                    "type": "LoadBalancer",
                    "loadBalancerIP": "203.0.113.10",
                    "annotations": {"networking.gke.io/load-balancer-type": "Internal"},
                },
                "envoyDeployment": {"replicas": 2},
            },
        }
    },
}

SECURITY_POLICY_JWT = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "SecurityPolicy",
    "metadata": {"name": "fraud-detector", "namespace": "mlops-serving"},
    "spec": {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "fraud-detector"}],
        "jwt": {
            "providers": [
                {
                    "name": "mlops",
                    "issuer": "https://login.example.com/",
                    "audiences": ["ml-api"],
                    "remoteJWKS": {"uri": "https://login.example.com/.well-known/jwks.json"},
                }
            ]
        },
        "authorization": {
            "defaultAction": "Deny",
            "rules": [
                {
                    "name": "consumers",
                    "action": "Allow",
                    "principal": {"jwt": {"provider": "mlops", "claims": [{"name": "azp", "values": ["checkout-service"]}]}},
                }
            ],
        },
    },
}

SECURITY_POLICY_API_KEY = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "SecurityPolicy",
    "metadata": {"name": "churn", "namespace": "team-risk"},
    "spec": {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "churn"}],
        "apiKeyAuth": {"credentialRefs": [{"name": "churn-api-keys"}], "extractFrom": [{"headers": ["x-api-key"]}]},
    },
}

BACKEND_TRAFFIC_POLICY = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "BackendTrafficPolicy",
    "metadata": {"name": "fraud-detector", "namespace": "mlops-serving"},
    "spec": {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "fraud-detector"}],
        "rateLimit": {"type": "Local", "local": {"rules": [{"limit": {"requests": 50, "unit": "Second"}}]}},
    },
}

CLIENT_TRAFFIC_POLICY = {
    "apiVersion": "gateway.envoyproxy.io/v1alpha1",
    "kind": "ClientTrafficPolicy",
    "metadata": {"name": "mlops", "namespace": "envoy-gateway-system"},
    "spec": {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "mlops"}],
        "tls": {"minVersion": "1.2"},
        "clientIPDetection": {"xForwardedFor": {"numTrustedHops": 1}},
    },
}

CERTIFICATE = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "metadata": {"name": "mlops-gateway", "namespace": "envoy-gateway-system"},
    "spec": {
        "secretName": "mlops-gateway-tls",
        "dnsNames": ["ml.example.com", "*.ml.example.com"],
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "mlops-acme"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    },
}

CLUSTER_ISSUER = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "ClusterIssuer",
    "metadata": {"name": "mlops-acme"},
    "spec": {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "email": "platform@example.com",
            "privateKeySecretRef": {"name": "mlops-acme-account"},
            "solvers": [
                {
                    "selector": {"dnsZones": ["ml.example.com"]},
                    "dns01": {"route53": {"region": "eu-west-1", "hostedZoneID": "Z0123456789ABCDEFGHIJ"}},
                }
            ],
        }
    },
}

ISSUER = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Issuer",
    "metadata": {"name": "mlops-acme", "namespace": "envoy-gateway-system"},
    "spec": {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "privateKeySecretRef": {"name": "mlops-acme-account"},
            "solvers": [{"dns01": {"cloudDNS": {"project": "mlops-prod-project", "hostedZoneName": "mlops-prod"}}}],
        }
    },
}

TARGET_GROUP_BINDING = {
    "apiVersion": "elbv2.k8s.aws/v1beta1",
    "kind": "TargetGroupBinding",
    "metadata": {"name": "mlops-gateway", "namespace": "envoy-gateway-system"},
    "spec": {
        "serviceRef": {"name": "mlops-gateway", "port": 443},
        "targetGroupARN": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/mlops-gateway/0123456789abcdef",
        "targetType": "ip",
        "networking": {
            "ingress": [{"from": [{"securityGroup": {"groupID": "sg-0123456789abcdef0"}}], "ports": [{"protocol": "TCP", "port": 10443}]}]
        },
    },
}

VALID = [
    GATEWAY_CLASS,
    GATEWAY,
    HTTP_ROUTE,
    REFERENCE_GRANT,
    ENVOY_PROXY,
    SECURITY_POLICY_JWT,
    SECURITY_POLICY_API_KEY,
    BACKEND_TRAFFIC_POLICY,
    CLIENT_TRAFFIC_POLICY,
    CERTIFICATE,
    CLUSTER_ISSUER,
    ISSUER,
    TARGET_GROUP_BINDING,
]


def findings_of(manifest: dict[str, Any], reference) -> list:
    return validate_manifest(resource("kubernetes:test:Object", manifest), manifest, reference, "1.33")


@pytest.mark.parametrize("manifest", VALID, ids=lambda m: f"{m['kind']}-{m['metadata']['name']}")
def test_the_objects_the_platform_renders_pass_their_upstream_crd(manifest, reference):
    assert findings_of(manifest, reference) == []


def _parent(document: dict, path: str) -> tuple[Any, Any]:
    """The container holding the dotted `path` (list items as numbers) and the last key of it."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parents:
        document = document[part]
    return document, last


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        container, key = _parent(document, path)
        container[key] = value

    return mutate


def _drop(path: str) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        container, key = _parent(document, path)
        del container[key]

    return mutate


def _rename(path: str, new_key: str) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        container, key = _parent(document, path)
        container[new_key] = container.pop(key)

    return mutate


# (valid object, mutation, path of the findings, words of one message); the comment cites the upstream rule broken.
INVALID = [
    # apis/v1/gatewayclass_types.go: GatewayClassSpec.ControllerName is required.
    (GATEWAY_CLASS, _drop("spec.controllerName"), "spec", "'controllerName' is a required property"),
    # apis/v1/gatewayclass_types.go: ParametersReference has group, kind, name, namespace only.
    (GATEWAY_CLASS, _rename("spec.parametersRef.name", "nam"), "spec.parametersRef", "'name' is a required property"),
    # apis/v1/gateway_types.go: GatewayTLSConfig.Mode is TLSModeType, Enum=Terminate;Passthrough.
    (GATEWAY, _set("spec.listeners.0.tls.mode", "Terminated"), "spec.listeners[0].tls.mode", "'Terminated' is not one of"),
    # apis/v1/gateway_types.go: Listener.Port is PortNumber, Minimum=1 Maximum=65535.
    (GATEWAY, _set("spec.listeners.1.port", 0), "spec.listeners[1].port", "0 is less than the minimum of 1"),
    # apis/v1/gateway_types.go: GatewaySpec.Listeners is required (MinItems=1).
    (GATEWAY, _drop("spec.listeners"), "spec", "'listeners' is a required property"),
    # apis/v1/gateway_types.go: FromNamespaces, Enum=All;Selector;Same.
    (GATEWAY, _set("spec.listeners.0.allowedRoutes.namespaces.from", "Any"), "spec.listeners[0].allowedRoutes.namespaces.from", "'Any' is not one of"),
    # apis/v1/httproute_types.go: PathMatchType, Enum=Exact;PathPrefix;RegularExpression.
    (HTTP_ROUTE, _set("spec.rules.0.matches.0.path.type", "Prefix"), "spec.rules[0].matches[0].path.type", "'Prefix' is not one of"),
    # apis/v1/httproute_types.go: HTTPURLRewriteFilter has hostname and path; `host` is not a field.
    (HTTP_ROUTE, _rename("spec.rules.0.filters.0.urlRewrite.hostname", "host"), "spec.rules[0].filters[0].urlRewrite", "'host' was unexpected"),
    # apis/v1/httproute_types.go: HTTPRouteFilterType, Enum=RequestHeaderModifier;...;URLRewrite;ExtensionRef.
    (HTTP_ROUTE, _set("spec.rules.0.filters.0.type", "HostRewrite"), "spec.rules[0].filters[0].type", "'HostRewrite' is not one of"),
    # apis/v1/object_reference_types.go (BackendObjectReference): Name is required.
    (HTTP_ROUTE, _drop("spec.rules.0.backendRefs.0.name"), "spec.rules[0].backendRefs[0]", "'name' is a required property"),
    # apis/v1beta1/referencegrant_types.go: ReferenceGrantFrom.Namespace is required.
    (REFERENCE_GRANT, _drop("spec.from.0.namespace"), "spec.from[0]", "'namespace' is a required property"),
    # apis/v1beta1/referencegrant_types.go: ReferenceGrantSpec.To is required (MinItems=1).
    (REFERENCE_GRANT, _set("spec.to", []), "spec.to", "should be non-empty"),
    # api/v1alpha1/shared_types.go: ServiceType, Enum=ClusterIP;LoadBalancer;NodePort.
    (ENVOY_PROXY, _set("spec.provider.kubernetes.envoyService.type", "Internal"), "spec.provider.kubernetes.envoyService.type", "'Internal' is not one of"),
    # api/v1alpha1/envoyproxy_types.go: EnvoyProxyProvider.Type is required.
    (ENVOY_PROXY, _drop("spec.provider.type"), "spec.provider", "'type' is a required property"),
    # api/v1alpha1/envoyproxy_types.go: KubernetesServiceSpec has loadBalancerIP, not loadBalancerAddress.
    (ENVOY_PROXY, _rename("spec.provider.kubernetes.envoyService.loadBalancerIP", "loadBalancerAddress"), "spec.provider.kubernetes.envoyService", "'loadBalancerAddress' was unexpected"),
    # api/v1alpha1/jwt_types.go: JWTProvider.Name is required.
    (SECURITY_POLICY_JWT, _drop("spec.jwt.providers.0.name"), "spec.jwt.providers[0]", "'name' is a required property"),
    # api/v1alpha1/jwt_types.go: RemoteJWKS.URI is required; the field is `uri`, not `url`.
    (SECURITY_POLICY_JWT, _rename("spec.jwt.providers.0.remoteJWKS.uri", "url"), "spec.jwt.providers[0].remoteJWKS", "'uri' is a required property"),
    # api/v1alpha1/authorization_types.go: AuthorizationAction, Enum=Allow;Deny.
    (SECURITY_POLICY_JWT, _set("spec.authorization.rules.0.action", "Permit"), "spec.authorization.rules[0].action", "'Permit' is not one of"),
    # api/v1alpha1/authorization_types.go: JWTClaim.Values is required.
    (SECURITY_POLICY_JWT, _drop("spec.authorization.rules.0.principal.jwt.claims.0.values"), "spec.authorization.rules[0].principal.jwt.claims[0]", "'values' is a required property"),
    # api/v1alpha1/api_key_auth_types.go: APIKeyAuth.CredentialRefs is required.
    (SECURITY_POLICY_API_KEY, _drop("spec.apiKeyAuth.credentialRefs"), "spec.apiKeyAuth", "'credentialRefs' is a required property"),
    # api/v1alpha1/ratelimit_types.go: RateLimitType, Enum=Global;Local.
    (BACKEND_TRAFFIC_POLICY, _set("spec.rateLimit.type", "local"), "spec.rateLimit.type", "'local' is not one of"),
    # api/v1alpha1/ratelimit_types.go: RateLimitUnit, Enum=Second;Minute;Hour;Day;Month;Year.
    (BACKEND_TRAFFIC_POLICY, _set("spec.rateLimit.local.rules.0.limit.unit", "Seconds"), "spec.rateLimit.local.rules[0].limit.unit", "'Seconds' is not one of"),
    # api/v1alpha1/ratelimit_types.go: RateLimitValue.Requests is a uint32 (Minimum=0).
    (BACKEND_TRAFFIC_POLICY, _set("spec.rateLimit.local.rules.0.limit.requests", -1), "spec.rateLimit.local.rules[0].limit.requests", "-1 is less than the minimum of 0"),
    # api/v1alpha1/tls_types.go: TLSVersion, Enum=Auto;"1.0";"1.1";"1.2";"1.3".
    (CLIENT_TRAFFIC_POLICY, _set("spec.tls.minVersion", "TLSv1.2"), "spec.tls.minVersion", "'TLSv1.2' is not one of"),
    # api/v1alpha1/clienttrafficpolicy_types.go: ClientTrafficPolicySpec has no `rateLimit` (that is BackendTrafficPolicy's).
    (CLIENT_TRAFFIC_POLICY, _set("spec.rateLimit", {"type": "Local"}), "spec", "'rateLimit' was unexpected"),
    # pkg/apis/certmanager/v1/types_certificate.go: CertificateSpec.SecretName is required.
    (CERTIFICATE, _drop("spec.secretName"), "spec", "'secretName' is a required property"),
    # pkg/apis/certmanager/v1/types_certificate.go: PrivateKeyAlgorithm, Enum=RSA;ECDSA;Ed25519.
    (CERTIFICATE, _set("spec.privateKey.algorithm", "EC"), "spec.privateKey.algorithm", "'EC' is not one of"),
    # pkg/apis/certmanager/v1/types_certificate.go: the field is dnsNames, not dnsName.
    (CERTIFICATE, _rename("spec.dnsNames", "dnsName"), "spec", "'dnsName' was unexpected"),
    # pkg/apis/acme/v1/types_issuer.go: ACMEIssuer.PrivateKey (privateKeySecretRef) is required.
    (CLUSTER_ISSUER, _drop("spec.acme.privateKeySecretRef"), "spec.acme", "'privateKeySecretRef' is a required property"),
    # pkg/apis/acme/v1/types_issuer.go: ACMEIssuerDNS01ProviderRoute53 spells hostedZoneID.
    (CLUSTER_ISSUER, _rename("spec.acme.solvers.0.dns01.route53.hostedZoneID", "hostedZoneId"), "spec.acme.solvers[0].dns01.route53", "'hostedZoneId' was unexpected"),
    # pkg/apis/acme/v1/types_issuer.go: ACMEIssuerDNS01ProviderCloudDNS.Project is required.
    (ISSUER, _drop("spec.acme.solvers.0.dns01.cloudDNS.project"), "spec.acme.solvers[0].dns01.cloudDNS", "'project' is a required property"),
    # pkg/apis/acme/v1/types_issuer.go: ACMEIssuer.Server is required.
    (ISSUER, _drop("spec.acme.server"), "spec.acme", "'server' is a required property"),
    # apis/elbv2/v1beta1/targetgroupbinding_types.go: TargetType, Enum=instance;ip.
    (TARGET_GROUP_BINDING, _set("spec.targetType", "IP"), "spec.targetType", "'IP' is not one of"),
    # apis/elbv2/v1beta1/targetgroupbinding_types.go: ServiceRef is required.
    (TARGET_GROUP_BINDING, _drop("spec.serviceRef"), "spec", "'serviceRef' is a required property"),
    # apis/elbv2/v1beta1/targetgroupbinding_types.go: NetworkingProtocol, Enum=TCP;UDP.
    (TARGET_GROUP_BINDING, _set("spec.networking.ingress.0.ports.0.protocol", "HTTPS"), "spec.networking.ingress[0].ports[0].protocol", "'HTTPS' is not one of"),
]


@pytest.mark.parametrize(("valid", "mutate", "path", "words"), INVALID, ids=lambda v: v if isinstance(v, str) else "")
def test_an_object_breaking_its_upstream_type_is_refused(valid, mutate, path, words, reference):
    broken = copy.deepcopy(valid)
    mutate(broken)
    findings = findings_of(broken, reference)
    assert {(f.check, f.path) for f in findings} == {("crd-schema", path)}
    assert any(words in f.message for f in findings), [f.message for f in findings]


def test_a_version_the_crd_does_not_serve_is_refused_naming_the_served_ones(reference):
    """Gateway API v1.6.1's standard channel serves Gateway v1 and v1beta1; v1alpha2 was removed
    (config/crd/standard/gateway.networking.k8s.io_gateways.yaml at v1.6.1)."""
    gateway = {**GATEWAY, "apiVersion": "gateway.networking.k8s.io/v1alpha2"}
    assert [(f.check, f.path, f.message) for f in findings_of(gateway, reference)] == [
        (
            "crd-version",
            "apiVersion",
            "gateway.networking.k8s.io/v1alpha2 is not a version the Gateway CRD serves; "
            "served: gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1",
        )
    ]


def test_each_served_version_is_checked_against_its_own_schema(reference):
    """ReferenceGrant is served as v1 and v1beta1 (storage); both validate the same object."""
    for version in ("v1", "v1beta1"):
        grant = {**REFERENCE_GRANT, "apiVersion": f"gateway.networking.k8s.io/{version}"}
        assert findings_of(grant, reference) == []
        broken = copy.deepcopy(grant)
        broken["spec"]["from"][0]["kind"] = ""
        assert {(f.check, f.path) for f in findings_of(broken, reference)} == {("crd-schema", "spec.from[0].kind")}
