"""The policy pack Pulumi runs (`pulumi preview --policy-pack policies`).

Pulumi runs this directory with it on sys.path, so the rules package is `rules` here. Constructing
a PolicyPack starts the analyzer's gRPC server and never returns: nothing else may import this
file (tests and `mlops validate` use `policies.rules` and `mlops.offline.policy_runner`).
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(name="mlops-guardrails", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
