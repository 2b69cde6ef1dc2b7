"""Payload collector: the sink of KServe's inference logger, writing what each model sees to the
payload store as Parquet (see README.md in this folder)."""
