"""Resource options shared by the AWS components."""

from __future__ import annotations

import pulumi


def stateful(parent: pulumi.Resource, keep: bool) -> pulumi.ResourceOptions:
    """Options for a resource holding data (bucket, database, KMS key).

    With `keep` (prod) the engine refuses to delete it (`protect`) and, should it ever be removed
    from the program, leaves it in the account instead of deleting it (`retain_on_delete`).
    """
    return pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep)
