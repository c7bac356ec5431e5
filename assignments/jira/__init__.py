"""JIRA integration: signed webhook in (inbound.py), ticket comments out through an outbox."""
