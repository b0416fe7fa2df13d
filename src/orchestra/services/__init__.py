"""Services: the only code that writes. One call is one transaction that appends its events."""
