"""The drift CronJob: `python -m monitoring.drift_job` (options and `DRIFT_*` variables in `config`).

One run compares the last `--window-hours` of a model version's collected payloads with its
reference sample, pushes the verdicts to the Pushgateway (job "mlops-drift", grouped by model and
version), writes `<report root>/<model>/<version>/reports/<timestamp>.{json,html}` and, when the
retraining policy says so, calls the retraining webhook.

Exit codes (also the `mlops_drift_job_status` label pushed for the run):

| code | status          | meaning                                                              |
|------|-----------------|----------------------------------------------------------------------|
| 0    | ok              | drift computed and pushed (whether or not anything drifted)          |
| 2    | (none pushed)   | invalid options or variables; the message names each one            |
| 3    | missing_data    | reference, labels or the model version's payload store not found     |
| 4    | schema_mismatch | current columns added, removed or retyped against the reference      |
| 5    | empty_window    | fewer than `--min-rows` rows in the window                           |
| 6    | error           | any other failure while reading or computing (see the log)           |
| 7    | error           | drift pushed, but the retraining webhook failed after every retry    |
| 8    | (none pushed)   | the Pushgateway could not be reached; reports are written            |

A failed run replaces only `mlops_drift_job_status` and `..._last_run_timestamp_seconds` in the
Pushgateway, so the last successful verdicts and `..._last_success_timestamp_seconds` stay visible.
"""
