"""What calibration publishes for the layers above it (reports subscribes in its AppConfig).

Calibration never imports reports: the worker announces what a step made, and whoever
cares records it.
"""

from django.dispatch import Signal

# A step's in-CASA diagnostics arrived (checked paths): run=Run, step=RunStep, items=list[dict].
# Sent inside the transaction that records the step's event, so receivers write atomically with it.
step_diagnostics = Signal()
