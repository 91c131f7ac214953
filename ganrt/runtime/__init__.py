"""ganrt.runtime."""
