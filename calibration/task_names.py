"""Names of the Celery tasks the calibration services enqueue.

The services send these by name (celery's send_task) instead of importing calibration/tasks.py,
which imports the services to run them: the dependency runs one way, tasks -> services.
tasks.py registers its tasks under these same constants.
"""

RUN_EXECUTE = "calibration.tasks.run_execute"
SCRIPT_GENERATE = "calibration.tasks.script_generate"
INGEST_EXECUTE = "calibration.tasks.ingest_execute"
CALIBRATED_COPY = "calibration.tasks.calibrated_copy"
