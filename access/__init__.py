"""Runtime: access control the platform keeps in its servers (`python -m access.mlflow_teams`).

Runs in the runtime image; imports nothing from the IaC side.
"""
