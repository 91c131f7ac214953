"""ganrt.train."""
