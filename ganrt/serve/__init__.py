"""ganrt.serve."""
