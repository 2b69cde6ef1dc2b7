"""One namespace per platform concern, each with Pod Security Admission labels and default-deny."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

PLATFORM = "mlops-platform"
MONITORING = "mlops-monitoring"
SERVING = "mlops-serving"
KSERVE = "kserve"
CERT_MANAGER = "cert-manager"


@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    # The Pod Security Standard enforced; `restricted` wherever the workloads allow it.
    pod_security: str = "restricted"
    default_deny: bool = True


@dataclass(frozen=True)
class PlatformNamespacesArgs:
    namespaces: list[NamespaceSpec] = field(
        default_factory=lambda: [
            NamespaceSpec(PLATFORM),
            # node-exporter needs host namespaces, so monitoring runs at `privileged`.
            NamespaceSpec(MONITORING, pod_security="privileged", default_deny=False),
            NamespaceSpec(SERVING),
            NamespaceSpec(KSERVE, default_deny=False),
            NamespaceSpec(CERT_MANAGER, default_deny=False),
        ]
    )


class PlatformNamespaces(pulumi.ComponentResource):
    """The platform's namespaces; `self.namespaces[name]` is the Namespace resource."""

    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: PlatformNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Namespaces", name, None, opts)
        self.namespaces = {}
        for spec in args.namespaces:
            namespace = k8s.core.v1.Namespace(
                f"{name}-{spec.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=spec.name,
                    labels={
                        "app.kubernetes.io/part-of": "mlops-platform",
                        "pod-security.kubernetes.io/enforce": spec.pod_security,
                        "pod-security.kubernetes.io/enforce-version": "latest",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                    },
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.namespaces[spec.name] = namespace
            if spec.default_deny:
                self._default_deny(name, spec.name, namespace)
        self.register_outputs({"namespaces": list(self.namespaces)})

    def _default_deny(self, name: str, namespace_name: str, namespace: k8s.core.v1.Namespace) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{name}-{namespace_name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=namespace.metadata.name),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
                # Egress to DNS and to pods of the same namespace stays open; every ingress flow,
                # and egress leaving the namespace, is opened by the component that needs it.
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53),
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=53),
                        ]
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())]
                    ),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
