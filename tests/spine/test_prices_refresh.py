"""`mlops prices refresh` against local stand-ins of the AWS Price List Query API and the GCP Cloud
Billing Catalog API, answering in the shapes their API references document; and the signer against
AWS's own Signature Version 4 test suite."""

from __future__ import annotations

import copy
import datetime
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from mlops.cli import main
from mlops.offline.cost import PriceTable, estimate
from mlops.offline.prices import catalog_machine_types, refresh, sign_v4
from mlops.project import EXIT_BAD_INPUT

KEY_ID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


# docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-test-suite.html: get-vanilla and post-vanilla.
@pytest.mark.parametrize(("method", "signature"), [
    ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
])
def test_signature_v4_matches_the_aws_test_suite(method, signature):
    headers = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
    assert sign_v4(method, "https://example.amazonaws.com/", headers, b"", KEY_ID, SECRET, "us-east-1", "service") == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


class FakeApi(BaseHTTPRequestHandler):
    answer: Callable[["FakeApi", bytes], tuple[int, dict[str, Any]]]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, document = type(self).answer(self, body)
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _reply


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[..., tuple[int, dict[str, Any]]]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[..., tuple[int, dict[str, Any]]]) -> str:
        handler = type("Handler", (FakeApi,), {"answer": staticmethod(answer)})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# An on-demand Linux price per instance type in eu-west-2 (invented figures; the shape is AWS's
# GetProducts response: PriceList entries are JSON *strings* of {product, terms}).
AWS_PRICES = {machine: round(0.1 + index / 100, 4) for index, machine in enumerate(catalog_machine_types("aws")) if machine != "p5.48xlarge"}


def aws_product(machine: str, price: float) -> str:
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "attributes": {"instanceType": machine, "regionCode": "eu-west-2"}},
        "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "pricePerUnit": {"USD": f"{price:.10f}"}, "description": f"${price} per On Demand Linux {machine} Instance Hour",
        }}}}},
    })


def aws_pricing(handler: FakeApi, body: bytes) -> tuple[int, dict[str, Any]]:
    """GetProducts: checks the target, the signature over what arrived, and pages with NextToken."""
    headers = {name.lower(): value for name, value in handler.headers.items()}
    signed_names = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    expected = sign_v4("POST", f"http://{headers['host']}/", {n: headers[n] for n in signed_names}, body, KEY_ID, SECRET, "us-east-1", "pricing")
    if headers.get("x-amz-target") != "AWSPriceListService.GetProducts" or headers["authorization"] != expected:
        return 403, {"__type": "AccessDeniedException", "Message": "signature does not match"}
    request = json.loads(body)
    filters = {f["Field"]: f["Value"] for f in request["Filters"]}
    machine = filters["instanceType"]
    if machine not in AWS_PRICES or filters["regionCode"] != "eu-west-2":
        return 200, {"FormatVersion": "aws_v1", "PriceList": []}
    # Two pages: a reserved-only product first (no OnDemand term), then the on-demand one.
    if "NextToken" not in request:
        return 200, {"FormatVersion": "aws_v1", "PriceList": [json.dumps({"product": {}, "terms": {"Reserved": {}}})], "NextToken": "page-2"}
    return 200, {"FormatVersion": "aws_v1", "PriceList": [aws_product(machine, AWS_PRICES[machine])]}


def test_aws_refresh_prices_every_offered_machine_type_and_the_preview_uses_them(tmp_path, serve, prod_rendering):
    environ = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "MLOPS_AWS_PRICING_ENDPOINT": serve(aws_pricing)}
    path = refresh("aws", "eu-west-2", environ, tmp_path, today=datetime.date(2026, 12, 1))
    written = yaml.safe_load(path.read_text())
    assert written["instance_hour"] == AWS_PRICES
    assert written["not_offered"] == ["p5.48xlarge"]
    assert (written["as_of"], written["source"]) == ("2026-12-01", "AWS Price List Query API (GetProducts, AmazonEC2, Linux on-demand)")

    document = copy.deepcopy(prod_rendering.document())
    document["config"]["mlops:aws"] = json.dumps({"region": "eu-west-2"})
    result = estimate(document, PriceTable.load(overlay_dir=tmp_path))
    gpu = next(line for line in result.lines if line.resource == "nodes-gpu-l4" and line.item == "nodes g6.2xlarge")
    assert gpu.monthly_max == round(4 * AWS_PRICES["g6.2xlarge"] * 730, 2)
    # Only machine types were refreshed: the cluster fee and the rest are listed, the total is partial.
    assert result.partial and {"cluster_hour", "nat_gateway_hour"} <= {u.item for u in result.unpriced}
    assert "Prices for aws eu-west-2: AWS Price List Query API" in result.to_markdown()


def test_a_refreshed_region_keeps_the_curated_items_and_names_both_sources(tmp_path, prod_rendering):
    (tmp_path / "aws-us-east-1.yaml").write_text(yaml.safe_dump({
        "cloud": "aws", "region": "us-east-1", "as_of": "2026-12-01", "source": "AWS Price List Query API",
        "instance_hour": {"g6.2xlarge": 1.5},
    }))
    table = PriceTable.load(overlay_dir=tmp_path)
    result = estimate(prod_rendering.document(), table)
    assert not result.partial
    assert table.provenance("aws", "us-east-1").as_of == f"2026-12-01 / {table.as_of}"
    assert "AWS Price List Query API as of 2026-12-01 for machine types; the rest AWS public price lists" in result.to_markdown()


def test_wrong_credentials_are_one_line(tmp_path, serve, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("MLOPS_AWS_PRICING_ENDPOINT", serve(aws_pricing))
    code = main(["prices", "refresh", "--cloud", "aws", "--region", "eu-west-2", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1
    assert err[0].startswith("mlops prices refresh: http://127.0.0.1:") and "answered 403" in err[0]


# Cloud Billing Catalog `services.skus.list`: {skus: [{description, category{usageType},
# serviceRegions, pricingInfo[{pricingExpression{usageUnit, tieredRates[{unitPrice{units, nanos}}]}}]}], nextPageToken}.
GCP_UNIT_PRICES = {
    "N1 Predefined Instance Core running in Americas": 0.031611,
    "N1 Predefined Instance Ram running in Americas": 0.004237,
    "N2 Instance Core running in Americas": 0.031611,
    "N2 Instance Ram running in Americas": 0.004237,
    "G2 Instance Core running in Americas": 0.024988,
    "G2 Instance Ram running in Americas": 0.002927,
    "A2 Instance Core running in Americas": 0.031611,
    "A2 Instance Ram running in Americas": 0.004237,
    "A3 Instance Core running in Americas": 0.029563,
    "A3 Instance Ram running in Americas": 0.002643,
    "Nvidia Tesla T4 GPU running in Americas": 0.35,
    "Nvidia L4 GPU running in Americas": 0.560040,
    "Nvidia Tesla A100 GPU running in Americas": 2.933908,
    "Nvidia H100 80GB GPU running in Americas": 9.796840,
}


def gcp_sku(description: str, price: float, usage: str = "OnDemand", regions: tuple[str, ...] = ("us-central1", "us-east1")) -> dict[str, Any]:
    units, nanos = divmod(round(price * 1e9), 10**9)
    return {
        "description": description,
        "category": {"resourceFamily": "Compute", "usageType": usage},
        "serviceRegions": list(regions),
        "pricingInfo": [{"pricingExpression": {"usageUnit": "h", "tieredRates": [{"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "units": str(units), "nanos": nanos}}]}}],
    }


def gcp_billing(handler: FakeApi, body: bytes) -> tuple[int, dict[str, Any]]:
    url = urlsplit(handler.path)
    query = parse_qs(url.query)
    if url.path != "/v1/services/6F81-5844-456A/skus" or query.get("key") != ["test-key"]:
        return 403, {"error": {"code": 403, "message": "API key not valid"}}
    skus = [gcp_sku(d, p) for d, p in GCP_UNIT_PRICES.items()]
    # Spot prices and other regions are on the first page and must be ignored.
    decoys = [gcp_sku(d, p / 3, usage="Preemptible") for d, p in GCP_UNIT_PRICES.items()]
    decoys += [gcp_sku(d, p * 2, regions=("europe-west4",)) for d, p in GCP_UNIT_PRICES.items()]
    if "pageToken" not in query:
        return 200, {"skus": decoys, "nextPageToken": "next"}
    return 200, {"skus": skus, "nextPageToken": ""}


def test_gcp_refresh_prices_machines_from_vcpu_memory_and_gpu_skus(tmp_path, serve):
    environ = {"GOOGLE_API_KEY": "test-key", "MLOPS_GCP_BILLING_ENDPOINT": serve(gcp_billing)}
    written = yaml.safe_load(refresh("gcp", "us-central1", environ, tmp_path).read_text())
    core, ram = GCP_UNIT_PRICES["N2 Instance Core running in Americas"], GCP_UNIT_PRICES["N2 Instance Ram running in Americas"]
    assert written["instance_hour"]["n2-standard-4"] == round(4 * core + 16 * ram, 6)
    g2_core, g2_ram = GCP_UNIT_PRICES["G2 Instance Core running in Americas"], GCP_UNIT_PRICES["G2 Instance Ram running in Americas"]
    assert written["instance_hour"]["g2-standard-8"] == round(8 * g2_core + 32 * g2_ram + GCP_UNIT_PRICES["Nvidia L4 GPU running in Americas"], 6)
    # N1 GPUs are attached separately: the machine is priced without them, the T4 on its own.
    assert written["instance_hour"]["n1-standard-4"] == round(4 * core + 15 * ram, 6)
    assert written["gpu_hour"] == {"nvidia-tesla-t4": 0.35}
    assert set(written["instance_hour"]) == set(catalog_machine_types("gcp"))


def test_missing_credentials_are_one_line(capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    assert main(["prices", "refresh", "--cloud", "gcp", "--region", "europe-west2"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == (
        "mlops prices refresh: no GCP credentials: set GOOGLE_API_KEY or GOOGLE_OAUTH_ACCESS_TOKEN (Cloud Billing Catalog API)\n"
    )

