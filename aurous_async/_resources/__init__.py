"""One module per API resource; ``AsyncAurous`` exposes them as attributes."""
