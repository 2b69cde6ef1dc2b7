"""Monthly cost estimates from the price table, and the change a pull request causes."""

from __future__ import annotations

import copy

import pytest
import yaml

from mlops.offline.cost import PRICES_FILE, PriceTable, cost_delta, estimate
from components.catalog import CPU_MACHINE_TYPES, GPU_OFFERS


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


@pytest.fixture(scope="module")
def prod_document(prod_rendering) -> dict:
    return prod_rendering.document()


def test_price_table_is_dated_sourced_and_covers_the_catalog():
    """Every instance/machine type the catalog can pick has a price, next to a date and sources."""
    raw = yaml.safe_load(PRICES_FILE.read_text())
    assert raw["as_of"] and raw["sources"]["aws"] and raw["sources"]["gcp"]
    for cloud, region in (("aws", "us-east-1"), ("gcp", "us-central1")):
        priced = set(raw[cloud][region]["instance_hour"])
        catalog = set(CPU_MACHINE_TYPES[cloud].values()) | {s.machine_type for o in GPU_OFFERS[cloud].values() for s in o.shapes}
        assert catalog <= priced, sorted(catalog - priced)


def test_prod_cost_at_min_and_max_scale(prod_document, prices):
    """Prod on AWS: GPU pool costs nothing at min (0 nodes) and 4 x g6.2xlarge at max; totals add up."""
    result = estimate(prod_document, prices)
    gpu = next(line for line in result.lines if line.resource == "nodes-gpu-l4" and line.item.startswith("nodes"))
    assert (gpu.monthly_min, gpu.monthly_max) == (0.0, round(4 * 0.9776 * 730, 2))
    assert result.monthly_min == pytest.approx(sum(line.monthly_min for line in result.lines), abs=0.01)
    assert 0 < result.monthly_min < result.monthly_max
    assert {"NAT gateway", "cluster fee", "database db.m7g.large multi-AZ"} <= {line.item for line in result.lines}
    assert result.unpriced == []


def test_cost_delta_of_a_bigger_gpu_pool(prod_document, prices):
    """Raising the GPU pool max from 4 to 6 adds 2 nodes at max scale and nothing at min."""
    head = copy.deepcopy(prod_document)
    pool = next(r for r in head["resources"] if r["name"] == "nodes-gpu-l4" and r["type"] == "aws:eks/nodeGroup:NodeGroup")
    pool["inputs"]["scalingConfig"]["maxSize"] = 6
    delta = cost_delta(prod_document, head, prices)
    assert delta.monthly_min == 0.0
    assert delta.monthly_max == pytest.approx(2 * (0.9776 * 730 + 200 * 0.08), abs=0.02)
    assert "+" in delta.to_markdown()


def test_local_stacks_cost_nothing(dev_rendering, prices):
    """A local stack has no cloud cost."""
    assert estimate(dev_rendering.document(), prices).monthly_max == 0


def test_a_region_missing_from_the_table_lists_every_costly_resource_as_unpriced(prod_document, prices):
    """eu-west-2 is not in the table: no PriceError, but each resource that costs money is listed
    with the reason, and the total says it is partial."""
    document = copy.deepcopy(prod_document)
    document["config"]["mlops:aws"] = '{"region": "eu-west-2"}'
    result = estimate(document, prices)
    assert result.lines == [] and result.partial
    unpriced = {u.resource for u in result.unpriced}
    priced_in_us_east_1 = {line.resource for line in estimate(prod_document, prices).lines}
    assert unpriced == priced_in_us_east_1
    assert all("has no aws region 'eu-west-2' (priced: us-east-1; run `mlops prices refresh`)" in u.reason for u in result.unpriced)
    text = result.to_markdown()
    assert f"(partial: {len(result.unpriced)} resource(s) unpriced, listed below)" in text
    assert "- `nodes-gpu-l4` (aws:eks/nodeGroup:NodeGroup): prices.yaml has no aws region 'eu-west-2'" in text


def test_an_instance_type_missing_from_the_table_is_unpriced_with_its_reason(prod_document, prices):
    table = copy.deepcopy(prices.regions)
    del table["aws"]["us-east-1"]["instance_hour"]["g6.2xlarge"]
    result = estimate(prod_document, PriceTable(prices.as_of, prices.hours_per_month, table, prices.sources))
    assert [(u.resource, u.item, u.reason) for u in result.unpriced] == [
        ("nodes-gpu-l4", "g6.2xlarge", "no price for instance type 'g6.2xlarge'")
    ]


def test_the_estimate_says_where_its_prices_come_from(prod_document, prices):
    text = estimate(prod_document, prices).to_markdown()
    assert f"Prices for aws us-east-1: {prices.sources['aws']}, as of {prices.as_of}." in text
