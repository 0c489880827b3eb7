"""One module per node requirement; each defines one `llmos.preflight.check.Check`."""
