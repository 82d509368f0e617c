"""What the money pages read: one module per page (deposits, expected, approvals, timeline)."""
