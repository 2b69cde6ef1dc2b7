"""The batch scoring CronJob: `python -m batch`, configured only by `BATCH_*` variables (see `config`).

It loads the registered version the model's InferenceService serves (`models:/<name>/<version>`,
one source of truth for what is live) with MLflow's pyfunc, and scores every input partition under
the input prefix that has not been scored yet: a partition is a directory directly under the
prefix (e.g. `date=2026-12-01/`) or a Parquet file directly in it. Rows are read in chunks of
`BATCH_CHUNK_ROWS` (pyarrow dataset batches), so memory follows the chunk, not the input. Each
partition is written to `<output>/<partition>/scored.parquet` with the input columns, the
prediction, `model_version` and `run_id`, then marked done by `<output>/<partition>/_SUCCESS`
(written last); a rerun skips marked partitions and rewrites an unmarked one whole, so nothing is
ever duplicated. Rows/s, rows, partitions and failures go to the Pushgateway (job "mlops-batch").

Exit codes (the drift job's contract):

| code | meaning                                                                        |
|------|--------------------------------------------------------------------------------|
| 0    | every partition scored now or before                                           |
| 2    | invalid settings; each variable is named                                       |
| 3    | the input prefix or the registered model version does not exist                |
| 4    | the input lacks columns the model's signature needs                            |
| 6    | a partition failed to score (the others are kept; a rerun resumes), see the log |
| 8    | scored, but the Pushgateway could not be reached                               |
"""
