"""Turn an inference request or response body into one mapping of named values per row.

Both KServe protocols are read:
- V1: `{"instances": [...]}` / `{"predictions": [...]}`. A dict instance keeps its keys; a list
  instance is named by the configured names when their count matches, else `0..n-1`; a scalar
  prediction is `prediction`.
- V2 (Open Inference Protocol): `{"inputs": [tensor...]}` / `{"outputs": [tensor...]}`, a tensor
  being `{name, shape, datatype, data}` whose first dimension is the batch. A lone tensor is named
  like a V1 list instance (a lone width-1 output is `prediction`); with several tensors each
  keeps its name, wide ones as `<name>.<j>`. Values deeper than one dimension per row stay
  nested lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Row = dict[str, Any]
SINGLE_OUTPUT = "prediction"


class PayloadError(ValueError):
    """The body is not a V1 or V2 inference request/response; the message says what was expected."""


def request_rows(body: Any, input_names: Sequence[str] | None = None) -> list[Row]:
    if isinstance(body, dict) and isinstance(body.get("instances"), list):
        return [_name_instance(instance, input_names, scalar_name="0") for instance in body["instances"]]
    if isinstance(body, dict) and isinstance(body.get("inputs"), list):
        return _tensor_rows(body["inputs"], input_names, "inputs", single_scalar_name=None)
    raise PayloadError(
        'request body is neither V1 {"instances": [...]} nor V2 {"inputs": [{name, shape, datatype, data}]}'
    )


def response_rows(body: Any, output_names: Sequence[str] | None = None) -> list[Row]:
    if isinstance(body, dict) and isinstance(body.get("predictions"), list):
        return [_name_instance(p, output_names, scalar_name=SINGLE_OUTPUT) for p in body["predictions"]]
    if isinstance(body, dict) and isinstance(body.get("outputs"), list):
        return _tensor_rows(body["outputs"], output_names, "outputs", single_scalar_name=SINGLE_OUTPUT)
    raise PayloadError(
        'response body is neither V1 {"predictions": [...]} nor V2 {"outputs": [{name, shape, datatype, data}]}'
    )


def _name_instance(instance: Any, names: Sequence[str] | None, scalar_name: str) -> Row:
    if isinstance(instance, dict):
        return {str(key): value for key, value in instance.items()}
    if isinstance(instance, list):
        return dict(zip(_positional_names(len(instance), names), instance))
    if names is not None and len(names) == 1:
        return {names[0]: instance}
    return {scalar_name: instance}


def _positional_names(width: int, names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == width:
        return list(names)
    return [str(index) for index in range(width)]


def _tensor_rows(
    tensors: list[Any], names: Sequence[str] | None, field: str, single_scalar_name: str | None
) -> list[Row]:
    if not tensors:
        raise PayloadError(f"V2 {field} is empty; expected at least one tensor")
    columns: list[tuple[str, np.ndarray]] = [_tensor(t, f"{field}[{i}]") for i, t in enumerate(tensors)]
    batch_sizes = {array.shape[0] for _, array in columns}
    if len(batch_sizes) != 1:
        described = ", ".join(f"{name}: {array.shape[0]}" for name, array in columns)
        raise PayloadError(f"V2 {field} tensors disagree on the batch size (first dimension): {described}")
    rows: list[Row] = [{} for _ in range(batch_sizes.pop())]
    lone = len(columns) == 1
    for tensor_name, array in columns:
        for row, element in zip(rows, array):
            row.update(_name_element(tensor_name, element, names if lone else None, lone, single_scalar_name))
    return rows


def _name_element(
    tensor_name: str, element: Any, names: Sequence[str] | None, lone: bool, single_scalar_name: str | None
) -> Row:
    """`element` is one batch row: a plain value for a 1-D tensor, else an array of the remaining dimensions."""
    if not isinstance(element, np.ndarray) or element.shape == (1,):
        value = element[0] if isinstance(element, np.ndarray) else element
        if names is not None and len(names) == 1:
            return {names[0]: _plain(value)}
        return {(single_scalar_name if lone and single_scalar_name else tensor_name): _plain(value)}
    if element.ndim == 1:
        if lone:
            return dict(zip(_positional_names(element.shape[0], names), (_plain(v) for v in element)))
        return {f"{tensor_name}.{j}": _plain(v) for j, v in enumerate(element)}
    return {tensor_name: element.tolist()}


def _plain(value: Any) -> Any:
    """numpy scalars become Python values, so rows serialise as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _tensor(tensor: Any, where: str) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise PayloadError(f"{where} is {type(tensor).__name__}; expected a tensor object {{name, shape, datatype, data}}")
    missing = [key for key in ("name", "shape", "data") if key not in tensor]
    if missing:
        raise PayloadError(f"{where} lacks {', '.join(missing)}; a V2 tensor has name, shape, datatype and data")
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) or not shape:
        raise PayloadError(f"{where}.shape={shape!r}; expected a non-empty list of non-negative integers, batch first")
    try:
        array = np.asarray(tensor["data"], dtype=object).reshape(shape)
    except ValueError as error:
        raise PayloadError(f"{where}.data does not fit shape {shape}: {error}") from error
    return str(tensor["name"]), array
