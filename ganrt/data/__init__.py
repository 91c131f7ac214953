"""ganrt.data."""
