"""Governance: the signed contract, each node's policy, privacy-budget ledger and audit log."""

from tessera.governance.audit import AuditLog, compare_logs, verify_entries
from tessera.governance.contract import Contract
from tessera.governance.job import DPRequest, JobSpec
from tessera.governance.ledger import SqliteLedger
from tessera.governance.policy import Decision, NodeState, check

__all__ = ["Contract", "JobSpec", "DPRequest", "check", "Decision", "NodeState", "SqliteLedger", "AuditLog",
           "verify_entries", "compare_logs"]
