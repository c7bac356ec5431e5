"""Domain events of the assignments app: what happened, for whoever listens.

The models send these and import nothing that reacts to them, so the JIRA package (and any
later listener) hangs off the lifecycle without the models depending on it. Receivers are
connected in AssignmentsConfig.ready (assignments/signals.py) and run synchronously, inside
the sender's transaction: a receiver's write commits or rolls back with the move itself.
"""

from django.dispatch import Signal

# Sent by Mous.transition after the StateChange row is written, still under the row lock.
# Keyword argument: change (the StateChange).
mous_state_changed = Signal()
