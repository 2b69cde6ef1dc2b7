"""Pulumi mocks that stand in for the engine and providers when rendering offline.

Every cloud-computed value gets a stable placeholder derived from the resource's logical name, so
two renders of the same commit are byte-identical and a diff shows only what the code changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"
GCP_PROJECT_NUMBER = "000000000000"


def _digest(name: str, length: int = 8) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:us-east-1:{ACCOUNT_ID}:{resource}"


def _gcp_name(args: pulumi.runtime.MockResourceArgs) -> str:
    """The declared name, else the one Pulumi's auto-naming would give (logical name + suffix)."""
    return str(args.inputs.get("name") or f"{args.name}-{_digest(args.name, 7)}")


def _aws_common(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    service = args.typ.split(":")[1].split("/")[0]
    return {"arn": _arn(service, args.name)}


def _password(args: pulumi.runtime.MockResourceArgs) -> str:
    """Stable per resource; new when its keepers change, as the provider replaces the password then."""
    keepers = args.inputs.get("keepers")
    identity = args.name if not keepers else f"{args.name}:{json.dumps(keepers, sort_keys=True)}"
    return f"mock-password-{_digest(identity, 16)}"


# Outputs a real provider would compute, by type token; everything else echoes the inputs.
COMPUTED: dict[str, Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]]] = {
    "random:index/randomPassword:RandomPassword": lambda a: {"result": _password(a)},
    "random:index/randomId:RandomId": lambda a: {"hex": _digest(a.name), "b64Url": _digest(a.name)},
    "aws:eks/cluster:Cluster": lambda a: {
        "arn": _arn("eks", f"cluster/{a.name}"),
        "endpoint": f"https://{_digest(a.name, 32).upper()}.gr7.us-east-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "bW9jay1jZXJ0aWZpY2F0ZS1hdXRob3JpdHk="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.us-east-1.amazonaws.com/id/{_digest(a.name, 32).upper()}"}]}],
        "clusterId": _digest(a.name),
    },
    # EKS names a managed node group's Auto Scaling group `eks-<node group>-<uuid>`.
    "aws:eks/nodeGroup:NodeGroup": lambda a: {
        "resources": [{"autoscalingGroups": [{"name": f"eks-{a.name}-{_digest(a.name, 32)}"}], "remoteAccessSecurityGroupId": ""}],
    },
    "aws:rds/instance:Instance": lambda a: {
        "address": f"{a.name}.{_digest(a.name, 12)}.us-east-1.rds.amazonaws.com",
        "endpoint": f"{a.name}.{_digest(a.name, 12)}.us-east-1.rds.amazonaws.com:5432",
        "port": 5432,
        "arn": _arn("rds", f"db:{a.name}"),
    },
    # IAM names an OIDC provider after its issuer (the cluster's), as the real ARN does.
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda a: {
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/"
        + str(a.inputs.get("url") or f"oidc.eks.us-east-1.amazonaws.com/id/{_digest(a.name, 32).upper()}").removeprefix("https://"),
    },
    "aws:iam/role:Role": lambda a: {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{a.name}"},
    # A declared bucket name is used as given; otherwise Pulumi auto-names (logical name + suffix).
    "aws:s3/bucket:Bucket": lambda a: {
        "bucket": a.inputs.get("bucket") or f"{a.name}-{_digest(a.name)}",
        "arn": f"arn:aws:s3:::{a.inputs.get('bucket') or f'{a.name}-{_digest(a.name)}'}",
    },
    "aws:ecr/repository:Repository": lambda a: {
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{a.inputs.get('name', a.name)}",
    },
    # A network load balancer's DNS name and the canonical hosted zone of NLBs in us-east-1 (alias targets).
    "aws:lb/loadBalancer:LoadBalancer": lambda a: {
        "arn": _arn("elasticloadbalancing", f"loadbalancer/net/{a.name}/{_digest(a.name, 16)}"),
        "dnsName": f"{a.name}-{_digest(a.name, 16)}.elb.us-east-1.amazonaws.com",
        "zoneId": "Z26RNL4JYFTOTI",
    },
    "aws:kms/key:Key": lambda a: {"arn": _arn("kms", f"key/{_digest(a.name, 32)}"), "keyId": _digest(a.name, 32)},
    "gcp:container/cluster:Cluster": lambda a: {
        "endpoint": f"10.0.{int(_digest(a.name, 2), 16) % 250}.2",
        "masterAuth": {"clusterCaCertificate": "bW9jay1jYQ=="},
        "selfLink": f"https://container.googleapis.com/v1/projects/mock/locations/mock/clusters/{a.name}",
    },
    "gcp:sql/databaseInstance:DatabaseInstance": lambda a: {
        "name": _gcp_name(a),
        "privateIpAddress": "10.60.0.3",
        "connectionName": f"mock:us-central1:{_gcp_name(a)}",
    },
    "gcp:serviceaccount/account:Account": lambda a: {
        "email": f"{a.inputs.get('accountId', a.name)}@mock-project.iam.gserviceaccount.com",
        "member": f"serviceAccount:{a.inputs.get('accountId', a.name)}@mock-project.iam.gserviceaccount.com",
        "name": f"projects/mock-project/serviceAccounts/{a.inputs.get('accountId', a.name)}@mock-project.iam.gserviceaccount.com",
    },
    # Auto-named GCP resources whose name other resources refer to.
    "gcp:compute/router:Router": lambda a: {"name": _gcp_name(a)},
    "gcp:compute/globalAddress:GlobalAddress": lambda a: {"name": _gcp_name(a)},
    # A reserved address: RFC 5737 documentation range outside, the default node subnet (10.50.0.0/20) inside.
    "gcp:compute/address:Address": lambda a: {
        "name": _gcp_name(a),
        "address": f"10.50.0.{int(_digest(a.name, 2), 16) % 250 + 2}"
        if a.inputs.get("addressType") == "INTERNAL"
        else f"203.0.113.{int(_digest(a.name, 2), 16) % 250 + 2}",
    },
    "gcp:kms/cryptoKey:CryptoKey": lambda a: {"id": f"projects/mock/locations/global/keyRings/ring/cryptoKeys/{a.name}"},
}


class PlaceholderMocks(pulumi.runtime.Mocks):
    """Return what a provider would compute; the SDK takes every other output from the inputs.

    Outside preview the SDK resolves each output the provider did not return from the resource's
    own input (`pulumi.runtime.rpc.resolve_outputs`), as it does for a real `pulumi up`, so echoing
    the inputs back would only serialise and deserialise them twice more.
    """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state: dict[str, Any] = {}
        if args.typ.startswith("aws:"):
            state.update(_aws_common(args))
        if args.typ.startswith("kubernetes:"):
            state.update(_kubernetes_auto_name(args))
        computed = COMPUTED.get(args.typ)
        if computed is not None:
            state.update(computed(args))
        if args.typ.startswith("aws:s3/bucket") and "bucket" not in args.inputs and "bucket" not in state:
            state["bucket"] = f"{args.name}-{_digest(args.name)}"
        if args.typ.startswith("gcp:storage/bucket") and "name" not in args.inputs:
            state["name"] = f"{args.name}-{_digest(args.name)}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["us-east-1a", "us-east-1b", "us-east-1c"], "zoneIds": ["use1-az1", "use1-az2", "use1-az4"]}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": _arn("iam", "user/mock"), "userId": "MOCK"}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "us-east-1", "region": "us-east-1"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": GCP_PROJECT_NUMBER, "projectId": args.args.get("projectId", "mock-project")}
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            agent = f"service-{GCP_PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": agent, "member": f"serviceAccount:{agent}", "project": args.args.get("project", "mock-project")}
        if args.token == "aws:ecr/getImage:getImage":
            # A stable stand-in for the digest the registry reports for the tag.
            digest = "sha256:" + hashlib.sha256(f"{args.args['repositoryName']}:{args.args.get('imageTag')}".encode()).hexdigest()
            return {**args.args, "imageDigest": digest, "id": digest}
        if args.token == "gcp:artifactregistry/getDockerImage:getDockerImage":
            name, _, _ = str(args.args["imageName"]).partition(":")
            where = f"{args.args['location']}-docker.pkg.dev/{args.args['project']}/{args.args['repositoryId']}"
            digest = "sha256:" + hashlib.sha256(f"{where}/{args.args['imageName']}".encode()).hexdigest()
            return {**args.args, "selfLink": f"{where}/{name}@{digest}", "id": digest}
        if args.token == "kubernetes:helm:template":
            return {"result": []}
        return {}


def _kubernetes_auto_name(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """Pulumi auto-names Kubernetes objects declared without `metadata.name`; mirror that stably."""
    metadata = dict(args.inputs.get("metadata") or {})
    if "name" in metadata or args.typ.startswith(("kubernetes:helm", "kubernetes:yaml")) or not args.custom:
        return {}
    metadata["name"] = f"{args.name}-{_digest(args.name)}"
    return {"metadata": metadata}
