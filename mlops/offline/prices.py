"""`mlops prices refresh`: fetch on-demand prices of every machine type the catalog can pick, for one
cloud region, from the cloud's own price API, into `policies/prices.d/<cloud>-<region>.yaml`.

- AWS: the Price List Query API (`AWSPriceListService.GetProducts`, service code AmazonEC2), signed
  with Signature Version 4 from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
- GCP: the Cloud Billing Catalog API (`services/6F81-5844-456A/skus`, Compute Engine), with an API
  key (GOOGLE_API_KEY) or an OAuth access token (GOOGLE_OAUTH_ACCESS_TOKEN). Google prices a machine
  by its vCPUs, its memory and its attached GPUs, each a SKU per region.

The hand-curated `policies/prices.yaml` stays byte-identical: `PriceTable.load` lays each refreshed
file over it, and the estimate names the source and date of both.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.catalog import CPU_MACHINE_TYPES, GPU_OFFERS, MACHINE_CAPACITY, REGIONS
from mlops.project import EXIT_BAD_INPUT, EXIT_OK, progress

OVERLAY_DIR = Path(__file__).resolve().parents[2] / "policies" / "prices.d"
AWS_PRICING_ENDPOINT = "https://api.pricing.us-east-1.amazonaws.com/"
GCP_BILLING_ENDPOINT = "https://cloudbilling.googleapis.com/"
GCE_SERVICE = "6F81-5844-456A"  # Compute Engine's id in the Cloud Billing Catalog


class PriceFetchError(RuntimeError):
    """The price API cannot be reached, refuses the credentials, or lacks a machine type."""


def catalog_machine_types(cloud: str) -> list[str]:
    shapes = {shape.machine_type for offer in GPU_OFFERS[cloud].values() for shape in offer.shapes}
    return sorted(set(CPU_MACHINE_TYPES[cloud].values()) | shapes)


# --- AWS ------------------------------------------------------------------------------------------


def sign_v4(method: str, url: str, headers: Mapping[str, str], body: bytes, key_id: str, secret: str, region: str, service: str) -> str:
    """The Authorization header of AWS Signature Version 4 (headers must hold host and x-amz-date)."""
    parsed = urllib.parse.urlsplit(url)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    )
    lowered = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    signed = ";".join(sorted(lowered))
    canonical = "\n".join(
        [method, parsed.path or "/", query, *(f"{name}:{lowered[name]}" for name in sorted(lowered)), "", signed, hashlib.sha256(body).hexdigest()]
    )
    amz_date = lowered["x-amz-date"]
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"


def _aws_get_products(endpoint: str, filters: dict[str, str], credentials: tuple[str, str, str | None]) -> list[dict[str, Any]]:
    key_id, secret, token = credentials
    products: list[dict[str, Any]] = []
    next_token: str | None = None
    while True:
        request_body: dict[str, Any] = {
            "ServiceCode": "AmazonEC2",
            "Filters": [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters.items()],
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
        }
        if next_token:
            request_body["NextToken"] = next_token
        body = json.dumps(request_body).encode()
        headers = {
            "host": urllib.parse.urlsplit(endpoint).netloc,
            "x-amz-date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
            "x-amz-target": "AWSPriceListService.GetProducts",
            "content-type": "application/x-amz-json-1.1",
        }
        if token:
            headers["x-amz-security-token"] = token
        headers["authorization"] = sign_v4("POST", endpoint, headers, body, key_id, secret, "us-east-1", "pricing")
        answer = _http_json(urllib.request.Request(endpoint, data=body, headers=headers, method="POST"))
        products += [json.loads(item) if isinstance(item, str) else item for item in answer.get("PriceList", [])]
        next_token = answer.get("NextToken")
        if not next_token:
            return products


def _on_demand_hourly(product: Mapping[str, Any]) -> float | None:
    for term in (product.get("terms") or {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") == "Hrs" and "USD" in dimension.get("pricePerUnit", {}):
                return float(dimension["pricePerUnit"]["USD"])
    return None


def fetch_aws(region: str, environ: Mapping[str, str]) -> dict[str, Any]:
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise PriceFetchError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (pricing:GetProducts)")
    endpoint = environ.get("MLOPS_AWS_PRICING_ENDPOINT", AWS_PRICING_ENDPOINT)
    prices: dict[str, float] = {}
    for machine in catalog_machine_types("aws"):
        # Linux, shared tenancy, no pre-installed software, on-demand capacity: the list price.
        filters = {"instanceType": machine, "regionCode": region, "operatingSystem": "Linux", "tenancy": "Shared",
                   "preInstalledSw": "NA", "capacitystatus": "Used"}
        found = [price for price in map(_on_demand_hourly, _aws_get_products(endpoint, filters, (key_id, secret, environ.get("AWS_SESSION_TOKEN")))) if price]
        if found:
            prices[machine] = min(found)
    return {"instance_hour": prices, "source": "AWS Price List Query API (GetProducts, AmazonEC2, Linux on-demand)"}


# --- GCP ------------------------------------------------------------------------------------------

# SKU description prefixes of each family's vCPU and memory (Cloud Billing Catalog, Compute Engine).
_GCP_FAMILY_SKUS = {
    "n1": ("N1 Predefined Instance Core", "N1 Predefined Instance Ram"),
    "n2": ("N2 Instance Core", "N2 Instance Ram"),
    "g2": ("G2 Instance Core", "G2 Instance Ram"),
    "a2": ("A2 Instance Core", "A2 Instance Ram"),
    "a3": ("A3 Instance Core", "A3 Instance Ram"),
}
_GCP_GPU_SKUS = {
    "nvidia-tesla-t4": "Nvidia Tesla T4 GPU",
    "nvidia-l4": "Nvidia L4 GPU",
    "nvidia-tesla-a100": "Nvidia Tesla A100 GPU",
    "nvidia-h100-80gb": "Nvidia H100 80GB GPU",
}


def _gcp_skus(endpoint: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    key, token = environ.get("GOOGLE_API_KEY"), environ.get("GOOGLE_OAUTH_ACCESS_TOKEN")
    if not key and not token:
        raise PriceFetchError("no GCP credentials: set GOOGLE_API_KEY or GOOGLE_OAUTH_ACCESS_TOKEN (Cloud Billing Catalog API)")
    skus: list[dict[str, Any]] = []
    page = ""
    while True:
        query = {"currencyCode": "USD", "pageSize": "5000", **({"key": key} if key else {}), **({"pageToken": page} if page else {})}
        url = f"{endpoint.rstrip('/')}/v1/services/{GCE_SERVICE}/skus?{urllib.parse.urlencode(query)}"
        headers = {"Authorization": f"Bearer {token}"} if token and not key else {}
        answer = _http_json(urllib.request.Request(url, headers=headers))
        skus += answer.get("skus", [])
        page = answer.get("nextPageToken") or ""
        if not page:
            return skus


def _unit_price(sku: Mapping[str, Any]) -> float:
    rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][-1]["unitPrice"]
    return int(rate.get("units") or 0) + int(rate.get("nanos") or 0) / 1e9


def fetch_gcp(region: str, environ: Mapping[str, str]) -> dict[str, Any]:
    skus = [
        sku for sku in _gcp_skus(environ.get("MLOPS_GCP_BILLING_ENDPOINT", GCP_BILLING_ENDPOINT), environ)
        if region in sku.get("serviceRegions", []) and (sku.get("category") or {}).get("usageType") == "OnDemand"
    ]

    def price(prefix: str) -> float | None:
        matching = [sku for sku in skus if sku.get("description", "").startswith(prefix)]
        return _unit_price(matching[0]) if matching else None

    gpus = {name: price(prefix) for name, prefix in _GCP_GPU_SKUS.items()}
    attached = {shape.machine_type: (offer.cloud_name, shape.count) for offer in GPU_OFFERS["gcp"].values() for shape in offer.shapes}
    machines: dict[str, float] = {}
    for machine in catalog_machine_types("gcp"):
        core, ram = (price(prefix) for prefix in _GCP_FAMILY_SKUS[machine.split("-")[0]])
        if core is None or ram is None:
            continue
        vcpus, memory_gib = MACHINE_CAPACITY[machine]
        hourly = vcpus * core + memory_gib * ram
        gpu, count = attached.get(machine, (None, 0))
        # N1 machines take T4s as separate attachments (priced in gpu_hour); G2/A2/A3 include theirs.
        if gpu is not None and not machine.startswith("n1-"):
            if gpus.get(gpu) is None:
                continue
            hourly += count * gpus[gpu]
        machines[machine] = round(hourly, 6)
    return {
        "instance_hour": machines,
        "gpu_hour": {"nvidia-tesla-t4": gpus["nvidia-tesla-t4"]} if gpus["nvidia-tesla-t4"] is not None else {},
        "source": "Cloud Billing Catalog API (Compute Engine SKUs: vCPU, memory and GPU, on-demand)",
    }


def _http_json(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise PriceFetchError(f"{request.full_url.split('?')[0]} answered {error.code}: {error.read().decode(errors='replace')[:300]}") from error
    except (urllib.error.URLError, OSError) as error:
        raise PriceFetchError(f"cannot reach {request.full_url.split('?')[0]}: {getattr(error, 'reason', error)}") from error


def refresh(cloud: str, region: str, environ: Mapping[str, str], out_dir: Path = OVERLAY_DIR, today: datetime.date | None = None) -> Path:
    if region not in REGIONS[cloud]:
        raise PriceFetchError(f"{cloud} has no region {region!r}; regions: {', '.join(sorted(REGIONS[cloud]))}")
    fetched = (fetch_aws if cloud == "aws" else fetch_gcp)(region, environ)
    missing = sorted(set(catalog_machine_types(cloud)) - set(fetched["instance_hour"]))
    if missing and not fetched["instance_hour"]:
        raise PriceFetchError(f"the {cloud} price API returned no price for any machine type in {region}")
    day = (today or datetime.date.today()).isoformat()
    document = {"cloud": cloud, "region": region, "as_of": day, **fetched}
    if missing:
        document["not_offered"] = missing
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{cloud}-{region}.yaml"
    path.write_text(
        f"# Written by `mlops prices refresh --cloud {cloud} --region {region}` on {day}; overrides policies/prices.yaml.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    return path


def command_refresh(args: argparse.Namespace) -> int:
    try:
        path = refresh(args.cloud, args.region, os.environ, Path(args.out_dir) if args.out_dir else OVERLAY_DIR)
    except PriceFetchError as error:
        print(f"mlops prices refresh: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    progress(f"wrote {path}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    prices = subparsers.add_parser("prices", help="the price table behind `mlops preview`'s cost estimate")
    commands = prices.add_subparsers(dest="prices_command", required=True)
    parser = commands.add_parser(
        "refresh",
        help="fetch on-demand prices of the catalog's machine types for one region from the AWS Price List / "
        "GCP Cloud Billing Catalog API (needs credentials) into policies/prices.d/",
    )
    parser.add_argument("--cloud", required=True, choices=("aws", "gcp"))
    parser.add_argument("--region", required=True, help="e.g. eu-west-2 or europe-west2")
    parser.add_argument("--out-dir", help="directory for the refreshed file (default: policies/prices.d)")
    parser.set_defaults(func=command_refresh)
