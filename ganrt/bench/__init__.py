"""ganrt.bench."""
