"""The training Job: `python -m training`, configured only by `TRAINING_*` variables (see `config`).

It reads the rows the model declares (labelled Parquet on the store, and/or the collector's payloads
joined with labels), trains a candidate with the configured trainer (scikit-learn by default),
scores the candidate and the current champion (alias `champion`, else the served version) on the
same held-out rows, logs the run, metrics and model signature to MLflow, and registers the candidate
with alias `challenger` only when it is not worse than the champion by more than the margin.

Exit codes (the drift job's contract, plus 9):

| code | meaning                                                                            |
|------|------------------------------------------------------------------------------------|
| 0    | candidate registered and aliased challenger                                        |
| 2    | invalid settings (each variable named), or a trainer that cannot be loaded         |
| 3    | training data, payloads or labels not found                                        |
| 4    | the champion does not accept the training columns                                  |
| 6    | any other failure (MLflow unreachable, see the log)                                |
| 9    | candidate refused: worse than the champion; the run's `mlops.reason` tag says why  |

The Job's pod failure policy fails the Job at once on 2, 3, 4 and 9: retrying cannot change them.
"""
