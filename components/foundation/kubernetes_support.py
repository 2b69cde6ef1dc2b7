"""Which Kubernetes minors each cloud still supports, by date: the one table `mlops validate` reads.

EKS gives a minor 14 months of standard support from its EKS release, then 12 months of paid
extended support (`upgradePolicy.supportType: EXTENDED`), then upgrades the cluster itself.
GKE gives about 14 months of standard support from the minor's availability in the Regular
channel; past its end the minor is offered only in the Extended channel (which this platform does
not use), so new clusters on REGULAR/STABLE/RAPID cannot be created on it.

Refreshing the table (docs/kubernetes-versions.md says when): add the new minor with the dates the
source pages show, pin its EKS add-on versions (`components/foundation/aws/addons.py`) and cluster
autoscaler (`cluster_autoscaler.py`), move the committed stacks, and update CHECKED_ON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

# The day the dates below were last compared with their sources.
CHECKED_ON = date(2026, 12, 1)
# `mlops validate` warns this many days before a minor leaves standard support.
WARN_DAYS = 60

EKS_SOURCE = "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (dates as listed by https://endoflife.date/amazon-eks)"
GKE_SOURCE = "https://cloud.google.com/kubernetes-engine/docs/release-schedule (dates as listed by https://endoflife.date/google-kubernetes-engine)"


@dataclass(frozen=True)
class MinorSupport:
    minor: str
    # EKS: release on EKS; GKE: availability in the Regular channel.
    released: date
    end_of_standard: date
    # EKS: end of extended support; GKE: end of the Extended channel (24 months after Regular
    # availability, per GKE's versioning policy: an estimate the release schedule refines).
    end_of_extended: date
    source: str


SUPPORT_CALENDAR: dict[str, dict[str, MinorSupport]] = {
    "aws": {
        "1.33": MinorSupport("1.33", date(2025, 5, 28), date(2026, 7, 29), date(2027, 7, 29), EKS_SOURCE),
        "1.34": MinorSupport("1.34", date(2025, 10, 6), date(2026, 12, 2), date(2027, 12, 2), EKS_SOURCE),
        "1.35": MinorSupport("1.35", date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27), EKS_SOURCE),
    },
    "gcp": {
        "1.33": MinorSupport("1.33", date(2025, 6, 3), date(2026, 8, 3), date(2027, 6, 3), GKE_SOURCE),
        "1.34": MinorSupport("1.34", date(2025, 9, 30), date(2026, 10, 1), date(2027, 9, 30), GKE_SOURCE),
        "1.35": MinorSupport("1.35", date(2026, 2, 11), date(2027, 4, 11), date(2028, 2, 11), GKE_SOURCE),
    },
}

Severity = Literal["warning", "failure"]


@dataclass(frozen=True)
class SupportVerdict:
    severity: Severity
    message: str


def support_verdict(cloud: str, minor: str, today: date, *, prod: bool) -> SupportVerdict | None:
    """What `today` means for a cluster on `minor`: None while in standard support and not about to leave it.

    Fails past the end of extended support everywhere, past the end of standard support in prod and
    on GKE (not offered for new clusters), and warns in dev on EKS (paid extended support) and
    within WARN_DAYS of the end of standard support.
    """
    calendar = SUPPORT_CALENDAR.get(cloud)
    if calendar is None:
        return None
    support = calendar.get(minor)
    # What to move to: minors with more than the warning window of standard support left.
    offered = ", ".join(
        f"{m} (standard support until {s.end_of_standard})" for m, s in sorted(calendar.items()) if (s.end_of_standard - today).days > WARN_DAYS
    ) or "none in the table: refresh components/foundation/kubernetes_support.py"
    if support is None:
        return SupportVerdict("failure", f"Kubernetes {minor} is not in the {cloud} support calendar; supported: {offered}")
    if today > support.end_of_extended:
        return SupportVerdict("failure", f"Kubernetes {minor} left {cloud} extended support on {support.end_of_extended}; use {offered}")
    if today > support.end_of_standard:
        message = f"Kubernetes {minor} left {cloud} standard support on {support.end_of_standard}; use {offered}"
        if prod or cloud == "gcp":
            return SupportVerdict("failure", message)
        return SupportVerdict("warning", message + " (EKS bills extended support per cluster hour)")
    days_left = (support.end_of_standard - today).days
    if days_left <= WARN_DAYS:
        return SupportVerdict(
            "warning", f"Kubernetes {minor} leaves {cloud} standard support on {support.end_of_standard} ({days_left} days); plan the upgrade to a newer minor"
        )
    return None
