"""The append-only audit log: every change to standards, studies and keys is recorded.

Entries are only ever added, in the transaction of the change they describe, so a change and
its entry commit or roll back together.
"""

from tuneboard.audit.repository import list_entries, record
from tuneboard.audit.schemas import AuditEntryOut

__all__ = ["AuditEntryOut", "list_entries", "record"]
