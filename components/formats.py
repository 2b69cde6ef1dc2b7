"""Value formats the cluster's own parsers enforce, checked here with the same grammar so a value
Kubernetes, its CronJob controller or Prometheus would refuse never leaves `mlops validate`.

Each checker returns None for an accepted value, or a message saying what is allowed.
"""

from __future__ import annotations

import re
from decimal import Decimal

# --- Kubernetes resource quantities --------------------------------------------------------
# k8s.io/apimachinery pkg/api/resource/quantity.go: a non-negative decimal (requests cannot be
# negative) followed by a binary-SI suffix, a decimal-SI suffix or a decimal exponent.
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX_FACTOR: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}


def quantity_value(text: str) -> Decimal:
    """The number a Kubernetes quantity stands for (cores for CPU, bytes for memory)."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; use a number with an optional suffix "
            "(CPU: 500m, 2; memory: 512Mi, 4Gi)"
        )
    suffix = match["suffix"] or ""
    factor = _SUFFIX_FACTOR[suffix] if suffix in _SUFFIX_FACTOR else Decimal(10) ** int(suffix[1:])
    return Decimal(match["number"]) * factor


def positive_quantity(text: str) -> str:
    if quantity_value(text) <= 0:
        raise ValueError(f"{text!r} requests nothing; a request must be above zero")
    return text


# --- Cron schedules ----------------------------------------------------------------------------
# Kubernetes validates CronJob.spec.schedule with robfig/cron/v3 ParseStandard (pkg/apis/batch/
# validation/validation.go; robfig/cron v3.0.1 parser.go): five fields, or a descriptor; a field is
# a comma list of `*`/`?`, N, N-M, each optionally `/step`; names for months and weekdays; and
# Kubernetes refuses TZ=/CRON_TZ= prefixes (use spec.timeZone).
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}),
    ("day of week", 0, 6, {name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def cron_problem(schedule: str) -> str | None:
    if schedule.startswith(("TZ=", "CRON_TZ=")):
        return "time zones are not allowed in a CronJob schedule (Kubernetes refuses TZ= and CRON_TZ=)"
    if schedule.startswith("@"):
        every = schedule.removeprefix("@every ")
        if schedule in _CRON_DESCRIPTORS or (every != schedule and _GO_DURATION.match(every)):
            return None
        return f"unknown descriptor; use one of {', '.join(_CRON_DESCRIPTORS)} or @every <duration>"
    fields = schedule.split()
    if len(fields) != len(_CRON_FIELDS):
        return f"a cron schedule has 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS):
        for part in text.split(","):
            problem = _cron_range_problem(part, low, high, names)
            if problem:
                return f"{label} field {text!r}: {problem}"
    return None


def _cron_range_problem(part: str, low: int, high: int, names: dict[str, int]) -> str | None:
    bounds, _, step = part.partition("/")
    if "/" in step:
        return "too many slashes"
    if bounds in ("*", "?"):
        start, end = low, high
    else:
        ends = bounds.split("-")
        if len(ends) > 2:
            return "too many hyphens"
        values = []
        for end_text in ends:
            value = names.get(end_text.lower())
            if value is None:
                if not end_text.isdigit():
                    return f"{end_text!r} is not a number"
                value = int(end_text)
            values.append(value)
        start, end = values[0], values[-1]
        if len(values) == 1 and step:
            end = high  # "N/step" means "N-max/step"
    if start < low:
        return f"{start} is below the minimum {low}"
    if end > high:
        return f"{end} is above the maximum {high}"
    if start > end:
        return f"range {start}-{end} runs backwards"
    if step and (not step.isdigit() or int(step) == 0):
        return f"step {step!r} must be a positive number"
    return None


def cron_schedule(schedule: str) -> str:
    problem = cron_problem(schedule)
    if problem:
        raise ValueError(f"{schedule!r} is not a schedule Kubernetes accepts: {problem}")
    return schedule


# --- Prometheus durations ------------------------------------------------------------------------
# prometheus/common model/time.go ParseDuration: units y w d h m s ms, largest first, each once; a
# PromQL range or `for:` of zero is refused ("duration must be greater than 0", promtool 2.42).
_PROMETHEUS_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")


def positive_prometheus_duration(text: str) -> str:
    match = _PROMETHEUS_DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration; use e.g. 30s, 10m, 1h30m, 15d")
    if not any(int(group) for group in match.groups()[1::2] if group):
        raise ValueError(f"{text!r} is zero; a Prometheus range, `for:` or retention must be above zero")
    return text


# --- Labels, names and locations -----------------------------------------------------------------
# k8s.io/apimachinery pkg/util/validation IsValidLabelValue.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_VALUE_MAX = 63


def label_value(text: str) -> str:
    if len(text) > LABEL_VALUE_MAX or not _LABEL_VALUE.match(text):
        raise ValueError(
            f"{text!r} becomes a Kubernetes label value, which is at most {LABEL_VALUE_MAX} characters of "
            "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return text


_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def no_whitespace(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError(f"{text!r} contains whitespace or a control character (a newline?); a location is one token")
    return text


def uri_with_scheme(text: str, schemes: tuple[str, ...], reader: str) -> str:
    """A URI its reader can read, or a path relative to the stack's store (stacks.locations makes it absolute)."""
    no_whitespace(text)
    if is_store_relative(text):
        return text
    if not text.startswith(schemes):
        raise ValueError(f"{text!r}: {reader} reads only {', '.join(schemes)}")
    return text


def is_store_relative(text: str) -> bool:
    """`12/<run>/artifacts/model`: no scheme, not absolute."""
    return bool(text) and ":" not in text.split("/", 1)[0] and not text.startswith("/")
