"""Reading a dataset to compare: a Parquet or CSV file, or a directory of Parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from monitoring.drift.errors import DriftInputError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)


def read_dataset(path: str | Path) -> pd.DataFrame:
    """The table at ``path``, chosen by suffix (.parquet/.pq or .csv); a directory is read as the
    union of the Parquet files under it, at any depth.

    Raises FileNotFoundError when nothing is at ``path`` and DriftInputError for a file of another
    kind or a directory without Parquet files.
    """
    path = Path(path)
    if path.is_dir():
        return _read_parquet_directory(path)
    if not path.exists():
        raise FileNotFoundError(f"no file or directory at {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in CSV_SUFFIXES:
            return pd.read_csv(path)
    except (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DriftInputError(f"cannot read {path}: {error}") from error
    raise DriftInputError(
        f"cannot read {path}: suffix '{path.suffix}' is not one of {list(PARQUET_SUFFIXES + CSV_SUFFIXES)}, "
        "and it is not a directory of Parquet files"
    )


def _read_parquet_directory(path: Path) -> pd.DataFrame:
    files = sorted(
        str(file) for suffix in PARQUET_SUFFIXES for file in path.rglob(f"*{suffix}")
        if not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
    )
    if not files:
        raise DriftInputError(f"directory {path} holds no Parquet files ({'/'.join(PARQUET_SUFFIXES)})")
    try:
        # A column missing from some files is read as null there; one typed differently is an error.
        schema = pa.unify_schemas([pq.read_schema(file) for file in files])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DriftInputError(f"Parquet files under {path} disagree on column types: {error}") from error
    # Listing files (not the directory) keeps partition folders such as date=2024-01-01/ from
    # becoming columns: the payload store's date/hour folders would otherwise be compared as features.
    return pads.dataset(files, schema=schema, format="parquet").to_table().to_pandas()
