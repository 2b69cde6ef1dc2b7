"""Reading KServe inference-logger CloudEvents (binary and structured mode) and their V1/V2 bodies."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from serving.collector.config import CollectorConfig, ModelSettings
from serving.collector.events import EventRejected, InferenceEvent, parse_http_event
from serving.collector.payloads import PayloadError, request_rows, response_rows
from tests.runtime.collector_support import REQUEST, RESPONSE, binary_headers, structured_body

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def config(*models: ModelSettings) -> CollectorConfig:
    return CollectorConfig(store_uri="/unused", spool_dir=Path("/unused"), models=list(models))


def parse(headers: dict[str, str], body: object, settings: CollectorConfig | None = None) -> InferenceEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_http_event(headers, raw, settings or config(), lambda: NOW)


# --- V1 / V2 bodies -------------------------------------------------------------------------


def test_v1_list_instances_are_named_by_position_without_configured_names() -> None:
    """A V1 list instance becomes features 0..n-1, one row per instance."""
    assert request_rows({"instances": [[1, 2], [3, 4]]}) == [{"0": 1, "1": 2}, {"0": 3, "1": 4}]


def test_v1_list_instances_take_the_configured_feature_names() -> None:
    """Configured input names replace positions when their count matches the instance width."""
    assert request_rows({"instances": [[5.1, 3.5]]}, ["sepal_length", "sepal_width"]) == [
        {"sepal_length": 5.1, "sepal_width": 3.5}
    ]


def test_v1_configured_names_of_the_wrong_width_fall_back_to_positions() -> None:
    """A width mismatch keeps positional names (the drift job then reports the schema mismatch)."""
    assert request_rows({"instances": [[1, 2, 3]]}, ["a", "b"]) == [{"0": 1, "1": 2, "2": 3}]


def test_v1_dict_instances_keep_their_keys() -> None:
    """Dict instances (column name -> value) keep the caller's names."""
    assert request_rows({"instances": [{"age": 40, "city": "Oslo"}]}) == [{"age": 40, "city": "Oslo"}]


def test_v1_scalar_prediction_is_named_prediction() -> None:
    """A single unnamed output is `prediction`; list predictions are positional."""
    assert response_rows({"predictions": [1, 0]}) == [{"prediction": 1}, {"prediction": 0}]
    assert response_rows({"predictions": [[0.1, 0.9]]}) == [{"0": 0.1, "1": 0.9}]


def test_v2_lone_tensor_is_split_into_positional_features_per_batch_row() -> None:
    """A [2, 3] tensor given as flat row-major data yields two rows of features 0..2."""
    body = {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}
    assert request_rows(body) == [{"0": 1, "1": 2, "2": 3}, {"0": 4, "1": 5, "2": 6}]


def test_v2_named_column_tensors_keep_their_names() -> None:
    """Several tensors (MLServer's pandas codec) are columns named after the tensors."""
    body = {
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [[40], [41]]},
            {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Rome"]},
            {"name": "emb", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]},
        ]
    }
    assert request_rows(body) == [
        {"age": 40, "city": "Oslo", "emb.0": 0.1, "emb.1": 0.2},
        {"age": 41, "city": "Rome", "emb.0": 0.3, "emb.1": 0.4},
    ]


def test_v2_lone_width_one_output_is_named_prediction() -> None:
    """A lone output column is `prediction`, like V1, unless output names are configured."""
    body = {"model_name": "iris", "outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [2, 0]}]}
    assert response_rows(body) == [{"prediction": 2}, {"prediction": 0}]
    assert response_rows(body, ["species"]) == [{"species": 2}, {"species": 0}]


def test_v2_higher_rank_values_stay_nested_per_row() -> None:
    """An image-like [1, 2, 2] tensor keeps each row's 2x2 value as a nested list."""
    body = {"inputs": [{"name": "img", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    assert request_rows(body) == [{"img": [[1, 2], [3, 4]]}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": []}, "neither V1"),
        ({"inputs": []}, "empty"),
        ({"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}, "does not fit shape"),
        ({"inputs": [{"name": "x", "data": [1]}]}, "lacks shape"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}, {"name": "y", "shape": [2], "data": [1, 2]}]}, "batch size"),
    ],
)
def test_bodies_that_are_no_inference_request_are_refused_with_the_reason(body: object, message: str) -> None:
    """Each structural problem is named in the error."""
    with pytest.raises(PayloadError, match=message):
        request_rows(body)


# --- CloudEvents ----------------------------------------------------------------------------


def test_binary_mode_request_event_is_read_with_its_attributes() -> None:
    """ce-* headers give id, type, model and time (nanoseconds truncated, UTC); the body gives rows."""
    event = parse(binary_headers("abc", REQUEST), {"instances": [[1.0, 2.0]]})
    assert event == InferenceEvent(
        event_id="abc",
        kind="request",
        model="iris",
        version="unknown",
        inference_service="iris",
        namespace="mlops-serving",
        time=datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=timezone.utc),
        rows=({"0": 1.0, "1": 2.0},),
        received_id=event.received_id,
    )
    assert len(event.received_id) == 32 and event.received_id != parse(binary_headers("abc", REQUEST), {"instances": [[1.0]]}).received_id


def test_version_comes_from_the_percent_encoded_annotation_extension() -> None:
    """`ce-annotations` (percent-encoded JSON, from logger.metadataAnnotations) wins over config."""
    settings = config(ModelSettings(inference_service="iris", version="1"))
    assert parse(binary_headers("a", RESPONSE, version="7"), {"predictions": [1]}, settings).version == "7"


def test_version_falls_back_to_configuration_then_unknown() -> None:
    """Without the annotation the configured version is used, else `unknown`."""
    settings = config(ModelSettings(inference_service="iris", model="iris-classifier", version="3"))
    event = parse(binary_headers("a", REQUEST), {"instances": [[1]]}, settings)
    assert (event.model, event.version) == ("iris-classifier", "3")
    assert parse(binary_headers("a", REQUEST, service="other"), {"instances": [[1]]}, settings).version == "unknown"


def test_structured_mode_event_carries_attributes_and_data_in_json() -> None:
    """application/cloudevents+json: attributes are members, the body is `data`."""
    body = structured_body("s1", RESPONSE, {"predictions": [2]}, version="4")
    event = parse({"content-type": "application/cloudevents+json; charset=utf-8"}, body)
    assert (event.event_id, event.kind, event.version, event.rows) == ("s1", "response", "4", ({"prediction": 2},))


def test_structured_mode_accepts_base64_data() -> None:
    """`data_base64` holds the JSON body as bytes."""
    envelope = json.loads(structured_body("s2", REQUEST, None))
    del envelope["data"]
    envelope["data_base64"] = base64.b64encode(json.dumps({"instances": [[3]]}).encode()).decode()
    event = parse({"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode())
    assert event.rows == ({"0": 3},)


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason", "message"),
    [
        ({"ce-id": ""}, {"instances": [[1]]}, 400, "missing_id", "no id"),
        ({"ce-type": "com.example.other"}, {"instances": [[1]]}, 400, "unknown_type", "com.example.other"),
        ({"ce-inferenceservicename": ""}, {"instances": [[1]]}, 400, "malformed", "ce-inferenceservicename"),
        ({}, b"{not json", 400, "malformed", "not JSON"),
        ({}, b"{\x80}", 400, "malformed", "not UTF-8"),
        ({}, {"predictions": [1]}, 400, "malformed", "neither V1"),
        ({"ce-time": "yesterday"}, {"instances": [[1]]}, 400, "malformed", "RFC 3339"),
        ({"ce-annotations": "{%22mlops.platform/model-version%22:%22../x%22}"}, {"instances": [[1]]}, 400, "malformed", "store directory"),
        ({"content-type": "application/cloudevents-batch+json"}, [], 415, "unsupported_media_type", "batched"),
    ],
)
def test_malformed_events_are_rejected_with_status_reason_and_message(
    headers: dict[str, str], body: object, status: int, reason: str, message: str
) -> None:
    """Every way an event can be unusable maps to a 4xx, a drop reason and a message naming the problem."""
    with pytest.raises(EventRejected, match=message) as caught:
        parse({**binary_headers("x", REQUEST), **headers}, body)
    assert (caught.value.status, caught.value.reason) == (status, reason)


def test_spooled_form_round_trips() -> None:
    """What the spool stores reads back into the same event."""
    event = parse(binary_headers("rt", REQUEST, version="2"), {"instances": [{"a": [1, 2]}]})
    assert InferenceEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


@pytest.mark.parametrize("depth", [65, 5000, 200_000])
def test_json_nested_deeper_than_the_limit_is_malformed_not_a_crash(depth: int) -> None:
    """65 levels (parseable, over the limit) and far more (past Python's parser) are both 400s."""
    body = ('{"instances": [' + "[" * depth + "1" + "]" * depth + "]}").encode()
    with pytest.raises(EventRejected, match="nests deeper than 64 levels") as rejected:
        parse_http_event(binary_headers("deep", REQUEST), body, config(), lambda: NOW)
    assert rejected.value.status == 400


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """A text feature full of brackets is a string, not depth."""
    body = json.dumps({"instances": [{"note": "[" * 500}]}).encode()
    event = parse_http_event(binary_headers("text", REQUEST), body, config(), lambda: NOW)
    assert event.rows == ({"note": "[" * 500},)
