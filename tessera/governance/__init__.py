"""Governance: the signed contract, each node's policy, privacy-budget ledger and audit log."""

from typing import TYPE_CHECKING

from tessera._exports import lazy_exports

if TYPE_CHECKING:
    from tessera.governance.audit import AuditLog, compare_logs, verify_entries
    from tessera.governance.contract import Contract
    from tessera.governance.job import DPRequest, JobSpec
    from tessera.governance.ledger import SqliteLedger
    from tessera.governance.policy import Decision, NodeState, check

__all__ = ["Contract", "JobSpec", "DPRequest", "check", "Decision", "NodeState", "SqliteLedger", "AuditLog",
           "verify_entries", "compare_logs"]

#: Imported when first used: the ledger (a party's DP charge) or the contract (the CLI) loads
#: neither the policy (which imports every analysis and the PSI modes) nor the audit log.
_LAZY = {"AuditLog": "tessera.governance.audit", "compare_logs": "tessera.governance.audit",
         "verify_entries": "tessera.governance.audit", "Contract": "tessera.governance.contract",
         "DPRequest": "tessera.governance.job", "JobSpec": "tessera.governance.job",
         "SqliteLedger": "tessera.governance.ledger", "Decision": "tessera.governance.policy",
         "NodeState": "tessera.governance.policy", "check": "tessera.governance.policy"}

__getattr__ = lazy_exports(__name__, _LAZY)
